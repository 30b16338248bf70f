echo "about to fail"
exit 42
