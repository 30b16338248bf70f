render() {
  cat <<EOF
[$1]
  url = https://$1.example.com
  port = $2
EOF
}
for env in dev prod; do
  render "$env" $(( ${#env} * 1000 ))
done > envs.ini
cat envs.ini
grep -c '^\[' envs.ini
