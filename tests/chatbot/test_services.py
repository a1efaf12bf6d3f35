from decimal import Decimal

import pytest

from chatbot import services
from chatbot.models import Message
from recommender.models import Impression
from tests.factories import BrandFactory, CategoryFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    phones = CategoryFactory(name="Headphones", slug="headphones")
    kettles = CategoryFactory(name="Kettles", slug="kettles")
    sony = BrandFactory(name="Sony", slug="sony")
    cheap = [ProductFactory(category=phones, brand=sony, price=Decimal(p)) for p in ("20", "30", "45", "60")]
    dear = [ProductFactory(category=phones, price=Decimal(p)) for p in ("150", "220")]
    other = [ProductFactory(category=kettles, price=Decimal("25")) for _ in range(3)]
    return {"cheap": cheap, "dear": dear, "other": other}


def _conv():
    return services.conversation_get_or_create(conversation_id=None, visitor_id="visitor-123", customer=None)


def test_reply_respects_category_and_budget_and_logs_impressions(shop):
    conv = _conv()
    reply = services.chat_reply(conversation=conv, text="headphones under $50")
    ids = {i.product_id for i in reply.items}
    assert ids and ids <= {p.pk for p in shop["cheap"][:3]}
    assert all(Decimal(i.price) <= 50 for i in reply.items)
    logged = Impression.objects.filter(widget__slug=services.CHAT_WIDGET_SLUG)
    assert {str(i.id) for i in logged} == {i.impression_id for i in reply.items}
    assert Message.objects.filter(conversation=conv).count() == 2


def test_more_never_repeats_and_cheaper_goes_below_shown(shop):
    conv = _conv()
    first = services.chat_reply(conversation=conv, text="headphones")
    conv.refresh_from_db()
    more = services.chat_reply(conversation=conv, text="show me more")
    assert not {i.product_id for i in first.items} & {i.product_id for i in more.items}
    conv.refresh_from_db()
    cheaper = services.chat_reply(conversation=conv, text="cheaper")
    shown_min = min(Decimal(i.price) for i in more.items) if more.items else Decimal("1e9")
    assert all(Decimal(i.price) <= shown_min for i in cheaper.items)


def test_no_match_says_so_plainly(shop):
    reply = services.chat_reply(conversation=_conv(), text="kettles over 1000")
    assert reply.items == ()
    assert "couldn't find" in reply.text


def test_bad_messages_are_refused_with_guidance(shop):
    with pytest.raises(services.ChatInputError, match="Type a message"):
        services.chat_reply(conversation=_conv(), text="  ")
    with pytest.raises(services.ChatInputError, match="limited"):
        services.chat_reply(conversation=_conv(), text="x" * 501)
    with pytest.raises(services.ChatInputError, match="UUID"):
        services.conversation_get_or_create(conversation_id="nope", visitor_id="v", customer=None)


def test_a_conversation_is_resumed_only_by_its_own_visitor(shop):
    conv = _conv()
    same = services.conversation_get_or_create(
        conversation_id=str(conv.pk), visitor_id="visitor-123", customer=None
    )
    other = services.conversation_get_or_create(
        conversation_id=str(conv.pk), visitor_id="someone-else", customer=None
    )
    assert same.pk == conv.pk
    assert other.pk != conv.pk
