show() { echo "MODE=${MODE:-none}"; }
MODE=inline show
show
MODE=fixed
show
