# Station Booking. Only Python 3.11+ and make are needed: everything else is installed here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
STAMP := $(VENV)/.installed
CATALOGS := $(wildcard booking/translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install node run test test-pg lint format bench translations lock clean assets

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(STAMP) $(COMPILED)

booking/translations/%/LC_MESSAGES/messages.mo: booking/translations/%/LC_MESSAGES/messages.po $(STAMP)
	$(BIN)/pybabel compile --statistics -i $< -o $@

# The Node packages of the cross-parser and accessibility tests, when npm is there
# (without it those tests skip with a reason; CI has it, so in CI nothing skips).
NODE_STAMPS := tests/feeds/node/node_modules/.installed tests/browser/node/node_modules/.installed

%/node_modules/.installed: %/package-lock.json
	cd $* && npm ci --no-audit --no-fund --silent
	touch $@

node:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(NODE_STAMPS); \
	else echo "npm not found: the cross-parser and accessibility tests will skip"; fi

# Serve on http://127.0.0.1:5000 with an embedded SQLite database under instance/.
run: install
	@mkdir -p instance
	@if [ -z "$$DATABASE_URL" ] && [ ! -f instance/booking.sqlite3 ]; then touch instance/.new-database; fi
	$(FLASK) db upgrade
	$(FLASK) booking seed
	@if [ -f instance/.new-database ]; then $(FLASK) booking demo && rm -f instance/.new-database; fi
	$(FLASK) booking refresh-usage
	@echo ""
	@echo "  Station Booking on http://127.0.0.1:5000"
	@echo "  demo member: member@example.com / station-demo"
	@echo "  demo staff:  staff@example.com  / station-demo"
	@echo ""
	$(FLASK) run --host 127.0.0.1 --port 5000

# The whole suite on SQLite; set TEST_DATABASE_URL to run it on PostgreSQL.
test: install node
	$(BIN)/python -m pytest

test-pg: install node
	TEST_DATABASE_URL=$(PG_URL) $(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmarks: not part of `make test`. Builds 1M bookings on SQLite and PostgreSQL (once;
# later runs reuse bench-data/ and the `bench` database), then loads pages with wrk.
bench: install
	$(BIN)/python benchmarks/engine.py --db both --explain
	$(BIN)/python benchmarks/pages.py
	$(BIN)/python benchmarks/feeds.py
	$(BIN)/python benchmarks/staff.py
	$(BIN)/python benchmarks/staff.py --dataset sqlite:///$(CURDIR)/bench-data/engine-1000000-100.sqlite3
	$(BIN)/python benchmarks/staff.py --dataset postgresql+psycopg://postgres@127.0.0.1:5432/bench

# Extract messages from code and templates, merge them into the catalogs, compile.
# --ignore-dirs: Babel skips folders starting with "_" by default, which would miss templates/_macros.
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --ignore-dirs ".* __pycache__ node_modules" -o booking/translations/messages.pot --no-location --sort-output .
	$(BIN)/pybabel update -i booking/translations/messages.pot -d booking/translations --no-fuzzy-matching --ignore-obsolete
	$(BIN)/python -m tools.catalogs fill-english
	$(BIN)/pybabel compile -d booking/translations --statistics
	$(BIN)/python -m tools.catalogs check || echo "translate the messages above in booking/translations/zh_Hans_CN/LC_MESSAGES/messages.po"

# Re-pin every dependency to the newest allowed by pyproject.toml (then run the tests!).
lock:
	rm -rf /tmp/booking-lock && $(PYTHON) -m venv /tmp/booking-lock
	/tmp/booking-lock/bin/pip install --quiet -e '.[dev]'
	@echo "review the versions, then update requirements*.txt"; /tmp/booking-lock/bin/pip freeze --exclude-editable

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache test-artifacts

# Re-copy the front-end packages (pinned in assets/package-lock.json) into static/vendor.
assets:
	cd assets && npm ci --no-audit --no-fund
	cp assets/node_modules/bootstrap/dist/css/bootstrap.min.css assets/node_modules/bootstrap/dist/js/bootstrap.bundle.min.js \
	   assets/node_modules/bootstrap/LICENSE static/vendor/bootstrap/
	sed -i 's|/\*# sourceMappingURL=[^*]*\*/||; s|//# sourceMappingURL=.*||' static/vendor/bootstrap/bootstrap.min.*  static/vendor/bootstrap/bootstrap.bundle.min.js
	# our CSP forbids data: images; static/css/app.css supplies the same icons as files
	sed -i -E 's#url\("data:image/svg\+xml,[^"]*"\)#none#g' static/vendor/bootstrap/bootstrap.min.css
