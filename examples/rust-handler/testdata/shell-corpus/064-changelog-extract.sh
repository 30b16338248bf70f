version=$(cat VERSION)
sed -n "/^## $version/,/^## /p" CHANGELOG.md | sed '1d;$d' | sed '/^$/d'
