mkdir -p release
cp VERSION README.md release/
ls release
cp -r docs release/documentation
ls release/documentation
