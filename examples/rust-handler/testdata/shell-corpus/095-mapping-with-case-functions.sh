image_for() {
  case $1 in
    py*) echo "python:3.12" ;;
    node*) echo "node:20" ;;
    *) return 1 ;;
  esac
}
for t in python node ruby; do
  img=$(image_for "$t") || img="(none)"
  echo "$t -> $img"
done
