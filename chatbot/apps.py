from django.apps import AppConfig


class ChatbotConfig(AppConfig):
    name = "chatbot"
    verbose_name = "Shopping assistant"

    def ready(self) -> None:
        # The support console (recommender) shows chats without importing the chatbot: it is told here.
        from recommender.support.timeline import timeline_source_register

        from .selectors import chat_timeline

        timeline_source_register(name="chat", permission="chatbot.view_message", fetch=chat_timeline)
