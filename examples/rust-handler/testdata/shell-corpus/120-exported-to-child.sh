export SHARED=visible
PRIVATE=hidden
bash -c 'echo "shared=[$SHARED] private=[$PRIVATE]"'
