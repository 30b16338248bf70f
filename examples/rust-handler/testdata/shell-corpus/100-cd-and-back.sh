cd src
ls
cd app
ls
cd ../..
ls -d src
cd - > /dev/null
ls
