sh scripts/deploy.sh production
bash scripts/deploy.sh "review app"
bash -c 'echo "inline: $1 and $2"' ignored first second
bash -ec 'false; echo not-printed' || echo "bash -e failed with $?"
sh -c 'exit 4' || echo "sh -c exited $?"
echo 'echo from stdin' | bash
