files="$(ls src/app | tr '\n' ' ')"
echo "files: ${files% }"
msg="$(printf '%s-%s' "$(cat VERSION)" "$(basename "$PWD_IGNORED" 2>/dev/null || echo x)")"
echo "$msg"
