if command -v definitely-not-a-tool >/dev/null 2>&1; then
  echo "tool present"
else
  echo "tool missing, skipping"
fi
command -v sed >/dev/null && echo "sed available"
