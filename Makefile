# The README's commands. Each installs what it needs first.
.PHONY: demo test serve bench lint screenshots

demo:
	bash scripts/bootstrap.sh
	.venv/bin/siyu demo

test:
	bash scripts/test.sh

serve:
	bash scripts/bootstrap.sh
	.venv/bin/siyu serve

bench:
	bash scripts/bootstrap.sh
	.venv/bin/python -m bench ingest

lint:
	bash scripts/bootstrap.sh
	.venv/bin/ruff check siyu tests bench
	.venv/bin/mypy siyu

# Screenshots of the console for the README (runs `siyu demo` on a temporary database).
screenshots:
	bash scripts/bootstrap.sh
	.venv/bin/python scripts/screenshots.py
