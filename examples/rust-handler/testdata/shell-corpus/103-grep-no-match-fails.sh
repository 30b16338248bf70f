echo "looking for secrets"
grep -r 'password=' src
echo unreachable
