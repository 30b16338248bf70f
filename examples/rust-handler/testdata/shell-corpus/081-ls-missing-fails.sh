ls src
ls does-not-exist
echo unreachable
