attempt=0
until [ $attempt -ge 3 ]; do
  attempt=$((attempt + 1))
  echo "attempt $attempt"
done
