for env in production staging review-42 dev; do
  case "$env" in
    production) url=https://example.com ;;
    staging) url=https://staging.example.com ;;
    review-*) url="https://${env#review-}.review.example.com" ;;
    *) url=none ;;
  esac
  printf '%-12s %s\n' "$env" "$url"
done
