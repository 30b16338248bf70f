basename src/app/main.py
basename src/app/main.py .py
dirname src/app/main.py
dirname main.py
basename /a/b/
for f in src/lib/*.py; do echo "$(basename "$f" .py)"; done
