set -u
: "${CI_COMMIT_TAG:=}"
: "${DEPLOY_TARGET:=staging}"
if [ -z "$CI_COMMIT_TAG" ]; then echo "untagged build for $DEPLOY_TARGET"; fi
echo "args: ${1:-none} count: $#"
echo "${NOT_SET-}" "[${ALSO_NOT_SET:+x}]"
