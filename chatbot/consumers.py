"""WebSocket endpoint of the shopping assistant (thin: validates, calls chatbot.services)."""

import json

from channels.generic.websocket import AsyncWebsocketConsumer


class ChatConsumer(AsyncWebsocketConsumer):
    """Placeholder until the chatbot issue: echoes that the assistant is not available yet, validates JSON."""

    async def connect(self) -> None:
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data or "")
        except json.JSONDecodeError:
            await self.send(json.dumps({"type": "error", "error": "Messages must be JSON objects."}))
            return
        if not isinstance(message, dict) or not isinstance(message.get("text"), str):
            await self.send(json.dumps({"type": "error", "error": 'Send {"text": "..."}.'}))
            return
        await self.send(json.dumps({"type": "reply", "text": "The shopping assistant is not available yet."}))
