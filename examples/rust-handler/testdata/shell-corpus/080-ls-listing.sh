ls
ls src
ls -1 docs
ls -a build
ls src/app src/lib
