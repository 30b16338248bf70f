echo "too    many     spaces" | tr -s ' '
echo "keep only digits: a1b2c3" | tr -cd '0-9'; echo
echo "CamelCaseName" | sed 's/\([A-Z]\)/_\1/g' | tr '[:upper:]' '[:lower:]' | sed 's/^_//'
printf 'a\tb\n' | tr '\t' ','
