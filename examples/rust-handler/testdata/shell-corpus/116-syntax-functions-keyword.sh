function build {
  echo "building $1"
}
function test_it() {
  echo "testing $1"
}
build app
test_it app
