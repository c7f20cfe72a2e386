"""Pages that need no launch: one-click unsubscribe (RFC 8058) and the development outbox.

The unsubscribe URL is the ``List-Unsubscribe`` header's target. A GET (a person clicking
the link, or a mail scanner fetching it) only shows a confirmation form, so prefetching
never unsubscribes anyone; a POST unsubscribes. Mail providers send that POST themselves,
with the body ``List-Unsubscribe=One-Click``, and no cookies: nothing here needs a login.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from plugin.db import request_session
from plugin.followups.unsubscribe import read_token, unsubscribe
from plugin.models import Delivery, FollowUp

__all__ = ["blueprint", "dev_blueprint"]

blueprint = Blueprint("followups", __name__)
#: Registered only when PRECEPTOR_ENV=development.
dev_blueprint = Blueprint("followups_dev", __name__)


def _secret() -> str:
    return str(current_app.config["SECRET_KEY"])


@blueprint.get("/unsubscribe/<token>")
def unsubscribe_confirm(token: str) -> ResponseReturnValue:
    """Ask before unsubscribing: link scanners fetch URLs, people press buttons."""
    preference = read_token(request_session(), _secret(), token)
    if preference is None:
        abort(404)
    return render_template(
        "followups/unsubscribe.html",
        token=token,
        done=preference.unsubscribed_at is not None,
    )


@blueprint.post("/unsubscribe/<token>")
def unsubscribe_now(token: str) -> ResponseReturnValue:
    """Unsubscribe (the confirmation form, or a mail provider's RFC 8058 one-click POST)."""
    session = request_session()
    preference = read_token(session, _secret(), token)
    if preference is None:
        abort(404)
    unsubscribe(preference)
    session.commit()
    return render_template("followups/unsubscribe.html", token=token, done=True)


@dev_blueprint.get("/dev/mail")
def dev_outbox() -> ResponseReturnValue:
    """Development only: the latest e-mail deliveries as the database records them."""
    rows = (
        request_session()
        .execute(
            select(Delivery, FollowUp)
            .join(FollowUp, FollowUp.id == Delivery.followup_id)
            .where(Delivery.channel == "email")
            .order_by(Delivery.id.desc())
            .limit(200)
        )
        .all()
    )
    return render_template("followups/dev_mail.html", rows=rows)
