pkg_version=$(grep '"version"' package.json | sed -E 's/.*"version": "([^"]+)".*/\1/')
echo "package.json: $pkg_version"
[ "$pkg_version" = "$(cat VERSION)" ] && echo "versions agree"
