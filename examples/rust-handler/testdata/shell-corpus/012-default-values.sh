unset MAYBE
EMPTY=""
echo "${MAYBE:-default}" "${EMPTY:-empty-default}" "${EMPTY-set-but-empty}"
echo "${MAYBE:=assigned}" "$MAYBE"
echo "${MAYBE:+alternate}" "${UNSET_X:+nothing}"
DEPLOY_ENV=${DEPLOY_ENV:-staging}
echo "env=$DEPLOY_ENV"
