from django.contrib import admin

from .models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    readonly_fields = ("role", "text", "items", "created_at")
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "customer", "visitor_id", "created_at", "updated_at")
    list_select_related = ("customer",)
    search_fields = ("visitor_id", "customer__external_id")
    readonly_fields = ("id", "visitor_id", "customer", "state", "created_at", "updated_at")
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("conversation", "role", "text", "created_at")
    list_filter = ("role",)
    search_fields = ("text",)
    readonly_fields = ("conversation", "role", "text", "items", "created_at")
