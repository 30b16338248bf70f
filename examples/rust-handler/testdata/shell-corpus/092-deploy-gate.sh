CI_COMMIT_TAG=v1.4.2
CI_COMMIT_REF_NAME=$CI_COMMIT_TAG
if [ -n "${CI_COMMIT_TAG:-}" ] && [ "${CI_COMMIT_TAG#v}" = "$(cat VERSION)" ]; then
  echo "release $CI_COMMIT_TAG matches VERSION"
else
  echo "tag/VERSION mismatch"
  exit 1
fi
