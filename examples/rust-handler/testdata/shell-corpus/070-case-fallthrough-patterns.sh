for f in main.py README.md run.sh Makefile image.PNG; do
  case "$f" in
    *.py|*.pyw) kind=python ;;
    *.md) kind=docs ;;
    *.sh) kind=shell ;;
    [A-Z]*file) kind=build ;;
    *.[Pp][Nn][Gg]) kind=image ;;
    *) kind=other ;;
  esac
  echo "$f: $kind"
done
