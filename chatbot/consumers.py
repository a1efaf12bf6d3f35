"""WebSocket endpoint of the shopping assistant: validates each message, calls chatbot.services, answers.

Client -> server: {"type": "message", "text": "...", "conversation_id": "<uuid, optional>"}
Server -> client: {"type": "reply", "conversation_id": ..., "text": ..., "items": [...]}
                  {"type": "error", "error": "<what to do instead>"}
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from catalog.middleware import VISITOR_COOKIE
from catalog.selectors import customer_for_user_get

from . import services

MAX_FRAME_BYTES = 4096
RATE_LIMIT = 20  # messages per RATE_WINDOW seconds per connection
RATE_WINDOW = 60.0


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.sent_at: list[float] = []
        self.conversation_id: str | None = None
        await self.accept()

    async def error(self, message: str) -> None:
        await self.send(json.dumps({"type": "error", "error": message}))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.error("Send text frames containing JSON.")
            return
        if len(text_data.encode()) > MAX_FRAME_BYTES:
            await self.error(f"Message too large (limit {MAX_FRAME_BYTES} bytes).")
            return
        try:
            payload = json.loads(text_data)
        except json.JSONDecodeError:
            await self.error(
                'Messages must be JSON, e.g. {"type": "message", "text": "headphones under $50"}.'
            )
            return
        if not isinstance(payload, dict) or payload.get("type") != "message":
            await self.error('Send {"type": "message", "text": "..."}.')
            return
        text = payload.get("text")
        if not isinstance(text, str):
            await self.error('"text" must be a string.')
            return
        conversation_id = payload.get("conversation_id", self.conversation_id)
        if conversation_id is not None and not isinstance(conversation_id, str):
            await self.error('"conversation_id" must be a string from an earlier reply.')
            return
        now = time.monotonic()
        self.sent_at = [t for t in self.sent_at if now - t < RATE_WINDOW] + [now]
        if len(self.sent_at) > RATE_LIMIT:
            await self.error("You're sending messages too quickly; wait a moment and try again.")
            return
        try:
            reply = await self._handle(text, conversation_id)
        except services.ChatInputError as exc:
            await self.error(str(exc))
            return
        self.conversation_id = reply.conversation_id
        await self.send(
            json.dumps(
                {
                    "type": "reply",
                    "conversation_id": reply.conversation_id,
                    "text": reply.text,
                    "items": [asdict(i) for i in reply.items],
                }
            )
        )

    @database_sync_to_async
    def _handle(self, text: str, conversation_id: str | None) -> services.ChatReply:
        user = self.scope.get("user")
        customer = customer_for_user_get(user=user)
        visitor = (self.scope.get("cookies") or {}).get(VISITOR_COOKIE, "")[:64]
        conversation = services.conversation_get_or_create(
            conversation_id=conversation_id,
            visitor_id=visitor,
            customer=customer,
            owned=conversation_id is not None and conversation_id == self.conversation_id,
        )
        return services.chat_reply(conversation=conversation, text=text)
