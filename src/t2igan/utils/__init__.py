"""Small helpers every layer may use: user-facing errors, atomic files, seeding, image grids."""

from t2igan.utils.errors import T2IError

__all__ = ["T2IError"]
