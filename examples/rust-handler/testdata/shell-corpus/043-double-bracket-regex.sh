tag=v2.13.0-rc1
if [[ $tag =~ ^v([0-9]+)\.([0-9]+)\.([0-9]+)(-(.*))?$ ]]; then
  echo "major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]} patch=${BASH_REMATCH[3]} pre=${BASH_REMATCH[5]}"
fi
[[ "main" =~ ^(main|master)$ ]] && echo "default branch"
[[ "feature/x" =~ ^(main|master)$ ]] || echo "not default"
