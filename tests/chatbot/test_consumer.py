import json

import pytest
from channels.testing import WebsocketCommunicator

from chatbot.consumers import ChatConsumer
from tests.factories import CategoryFactory, ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def _connect():
    comm = WebsocketCommunicator(ChatConsumer.as_asgi(), "/ws/chat/")
    connected, _ = await comm.connect()
    assert connected
    return comm


@pytest.mark.asyncio
async def test_chat_round_trip_returns_items():
    from asgiref.sync import sync_to_async

    @sync_to_async
    def make():
        cat = CategoryFactory(name="Headphones", slug="headphones")
        ProductFactory(category=cat)

    await make()
    comm = await _connect()
    await comm.send_to(text_data=json.dumps({"type": "message", "text": "headphones"}))
    reply = json.loads(await comm.receive_from(timeout=20))
    assert reply["type"] == "reply" and reply["conversation_id"]
    assert len(reply["items"]) == 1
    await comm.disconnect()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("not json", "must be JSON"),
        (json.dumps([1, 2]), '{"type": "message"'),
        (json.dumps({"type": "message", "text": 5}), '"text" must be a string'),
        (json.dumps({"type": "message", "text": " "}), "Type a message"),
        (json.dumps({"type": "message", "text": "x", "conversation_id": 7}), "conversation_id"),
        ("x" * 5000, "too large"),
    ],
)
async def test_bad_frames_get_an_error_message_not_a_disconnect(frame, expected):
    comm = await _connect()
    await comm.send_to(text_data=frame)
    reply = json.loads(await comm.receive_from(timeout=20))
    assert reply["type"] == "error" and expected in reply["error"]
    # the connection stays usable
    await comm.send_to(text_data=json.dumps({"type": "message", "text": "hi"}))
    assert json.loads(await comm.receive_from(timeout=20))["type"] == "reply"
    await comm.disconnect()


@pytest.mark.asyncio
async def test_constraints_carry_over_between_messages_on_one_connection():
    from asgiref.sync import sync_to_async

    @sync_to_async
    def make():
        phones = CategoryFactory(name="Headphones", slug="headphones")
        kettles = CategoryFactory(name="Kettles", slug="kettles")
        for price in ("10", "20", "30", "40", "50", "60"):
            ProductFactory(category=phones, price=price)
        for _ in range(8):
            ProductFactory(category=kettles, price="15")
        return {p.pk for p in phones.products.all()}

    phone_ids = await make()
    comm = await _connect()  # no visitor cookie: the connection itself owns the conversation
    seen = set()
    for text in ("headphones", "show me more", "cheaper"):
        await comm.send_to(text_data=json.dumps({"type": "message", "text": text}))
        reply = json.loads(await comm.receive_from(timeout=20))
        ids = {i["product_id"] for i in reply["items"]}
        assert ids <= phone_ids, (text, reply["text"])  # still headphones, never kettles
        seen |= ids
    assert len(seen) == 6
    await comm.disconnect()
