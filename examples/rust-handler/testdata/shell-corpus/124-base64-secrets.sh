encoded=$(printf 'user:s3cret' | base64)
echo "$encoded"
echo "$encoded" | base64 -d; echo
printf 'a longer payload that wraps around the seventy-six column limit of base64 output lines' | base64
echo 'aGVsbG8gd29ybGQK' | base64 --decode
printf '' | base64
