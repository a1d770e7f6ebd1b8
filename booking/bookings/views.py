from flask import Blueprint

bp = Blueprint("bookings", __name__, url_prefix="/bookings")


@bp.get("")
def mine() -> str:
    return "mine"
