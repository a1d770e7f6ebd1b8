from flask import Blueprint

bp = Blueprint("spaces", __name__)


@bp.get("/")
def home() -> str:
    return "spaces"
