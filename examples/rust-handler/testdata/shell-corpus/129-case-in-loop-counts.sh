ok=0 warn=0 err=0
while read -r ip _ _ _ _ _ _ _ status _; do
  case $status in
    2??) ok=$((ok + 1)) ;;
    4??) warn=$((warn + 1)) ;;
    5??) err=$((err + 1)) ;;
  esac
done < data/access.log
printf 'ok=%d warn=%d err=%d\n' "$ok" "$warn" "$err"
