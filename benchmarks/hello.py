"""The bare Flask app the page benchmarks compare against: the ceiling on this machine."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "hello"
