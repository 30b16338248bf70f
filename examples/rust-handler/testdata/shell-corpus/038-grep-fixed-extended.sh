grep -F '[server]' config/settings.ini
grep -E '^(DB|APP)_' config/app.env | sort
grep -E -o 'v[0-9]+\.[0-9]+' data/versions.txt
grep -e fix -e feat CHANGELOG.md | wc -l
