CI_COMMIT_BRANCH=release/1.4
if [ "$CI_COMMIT_BRANCH" = "main" ]; then
  echo "deploy to production"
elif [[ "$CI_COMMIT_BRANCH" == release/* ]]; then
  echo "deploy to staging (${CI_COMMIT_BRANCH#release/})"
else
  echo "no deploy"
fi
