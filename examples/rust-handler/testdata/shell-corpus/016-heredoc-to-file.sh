mkdir -p out
cat > out/config.yml <<EOF
service:
  name: demo
  replicas: $((1 + 2))
EOF
wc -l out/config.yml
grep replicas out/config.yml
