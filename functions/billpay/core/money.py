"""Money: Decimal end to end, rounded to the currency's minor units where it enters or leaves.

Codat's SDK carries amounts as JSON floats; a float never reaches a record or an answer. Every
amount crossing a boundary goes through `to_money`, which rounds half up to the places ISO 4217
gives the currency (2 unless listed below).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 currencies whose minor unit is not 2 places.
_PLACES: dict[str, int] = {
    **dict.fromkeys(
        (
            "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
            "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4,
    "UYW": 4,
}  # fmt: skip


def currency_places(currency: str) -> int:
    return _PLACES.get(currency.upper(), 2)


def to_money(amount: Decimal | float | int | str, currency: str) -> Decimal:
    """`amount` as a Decimal with exactly the currency's places.

    A float is read through its shortest repr (`0.1` is 0.1, not 0.1000000000000000055...).
    """
    try:
        value = Decimal(repr(amount)) if isinstance(amount, float) else Decimal(amount)
    except InvalidOperation as error:
        raise ValueError(f"{amount!r} is not an amount") from error
    if not value.is_finite():
        raise ValueError(f"{amount!r} is not a finite amount")
    return value.quantize(Decimal(1).scaleb(-currency_places(currency)), rounding=ROUND_HALF_UP)
