from flask import Blueprint

bp = Blueprint("spaces", __name__)
