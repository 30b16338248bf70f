# FUNCNAME: the running functions, innermost first (a script read from
# standard input, as GitLab Runner feeds it, has no "main" at the bottom).
log() { echo "[${FUNCNAME[1]}] $*"; }
deploy() { log "deploying $1"; check; }
check() { echo "stack: ${FUNCNAME[*]} (${#FUNCNAME[@]})"; }
deploy app
echo "outside: [${FUNCNAME[0]:-none}] ${#FUNCNAME[@]}"
