"""The shopping assistant: a message in, a reply with recommended products out.

Ranking comes from the real serving path (`recommender.serving.recommendations_get` on the
`chat-assistant` widget, which merchandisers configure like any other widget); the shopper's stated
constraints (category, brand, price, keywords) filter it, and catalogue popularity fills in when the
personal list has too few matches. Shown items are logged as impressions, so chat clicks and purchases
are attributed like any widget's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from catalog.models import Brand, Category, Customer, Product
from catalog.selectors import category_tree_get, product_popularity_get
from recommender.models import Impression, Widget
from recommender.serving import impressions_write, recommendations_get

from .dialogue import Action, DialogueState, dialogue_next
from .models import Conversation, Message
from .nlu import Vocabulary, parse

CHAT_WIDGET_SLUG = "chat-assistant"
ITEMS_PER_REPLY = 4
MAX_MESSAGE_CHARS = 500
VOCAB_CACHE_KEY = "chatbot:vocabulary:v1"
VOCAB_TTL = 300


class ChatInputError(ValueError):
    """The shopper's message cannot be handled; the text says what to do instead."""


@dataclass(frozen=True)
class ChatItem:
    product_id: int
    title: str
    price: str
    currency: str
    url: str
    image: str
    reason: str
    impression_id: str | None


@dataclass(frozen=True)
class ChatReply:
    conversation_id: str
    text: str
    items: tuple[ChatItem, ...] = ()


def vocabulary_get() -> Vocabulary:
    """Category and brand names of the catalogue (cached for a few minutes)."""
    vocab = cache.get(VOCAB_CACHE_KEY)
    if isinstance(vocab, Vocabulary):
        return vocab
    cats = {name.lower(): pk for pk, name in Category.objects.values_list("id", "name")}
    brands = {name.lower(): pk for pk, name in Brand.objects.values_list("id", "name")}
    vocab = Vocabulary(categories=cats, brands=brands)
    cache.set(VOCAB_CACHE_KEY, vocab, VOCAB_TTL)
    return vocab


def chat_widget_get() -> Widget:
    widget, _ = Widget.objects.get_or_create(
        slug=CHAT_WIDGET_SLUG,
        defaults={
            "title": "Shopping assistant",
            "placement": "chat",
            "strategy": "personalized",
            "num_items": 4,
        },
    )
    return widget


def conversation_get_or_create(
    *, conversation_id: str | None, visitor_id: str, customer: Customer | None, owned: bool = False
) -> Conversation:
    """The shopper's conversation: resumes `conversation_id` only when it belongs to the same shopper
    (same customer or visitor cookie), or when `owned` (the caller issued that id on this connection)."""
    if conversation_id:
        try:
            cid = uuid.UUID(str(conversation_id))
        except ValueError:
            raise ChatInputError("conversation_id must be a UUID from an earlier reply.") from None
        conv = Conversation.objects.filter(pk=cid).first()
        if conv is not None and (
            owned
            or (customer is not None and conv.customer_id == customer.pk)
            or (visitor_id and conv.visitor_id == visitor_id)
        ):
            return conv
    return Conversation.objects.create(visitor_id=visitor_id, customer=customer)


GREETING = (
    "Hi! I'm the shop's assistant. Tell me what you're looking for, e.g. \"headphones under $80\" or "
    '"a gift for a coffee lover", and I\'ll suggest products that fit you.'
)
HELP = (
    'You can name a category or brand, a budget ("under $50", "between 20 and 40"), then say '
    '"cheaper", "more premium", "show more", "similar to the second one" or "start over".'
)


def chat_reply(*, conversation: Conversation, text: str) -> ChatReply:
    """Handle one shopper message: store it, update the dialogue state, answer with products."""
    text = (text or "").strip()
    if not text:
        raise ChatInputError('Type a message first, e.g. "headphones under $80".')
    if len(text) > MAX_MESSAGE_CHARS:
        raise ChatInputError(f"Messages are limited to {MAX_MESSAGE_CHARS} characters; please shorten it.")
    state = DialogueState.from_json(conversation.state)
    parsed = parse(text, vocabulary_get())
    state, action = dialogue_next(state, parsed)
    items: tuple[ChatItem, ...] = ()
    if action.kind == "greet":
        answer = GREETING
    elif action.kind == "help":
        answer = HELP
    elif action.kind == "thanks":
        answer = "You're welcome! Ask me any time."
    elif action.kind == "reset":
        answer = "Okay, starting over. What are you looking for?"
    else:
        items = _recommend(conversation=conversation, state=state, action=action)
        answer = _describe(state, action, items)
        state = DialogueState(
            **{
                **state.to_json(),
                "shown": tuple(dict.fromkeys(state.shown + tuple(i.product_id for i in items)))[-200:],
                "last_items": tuple(i.product_id for i in items) or state.last_items,
                "last_prices": tuple(i.price for i in items) or state.last_prices,
            }
        )
    with transaction.atomic():
        Message.objects.create(conversation=conversation, role=Message.Role.USER, text=text)
        Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            text=answer,
            items=[{"product_id": i.product_id, "impression_id": i.impression_id} for i in items],
        )
        conversation.state = state.to_json()
        conversation.save(update_fields=["state", "updated_at"])
    return ChatReply(str(conversation.pk), answer, items)


def _constraint_q(state: DialogueState) -> Q:
    q = Q(is_active=True)
    if state.category_ids:
        tree = category_tree_get()
        ids: set[int] = set()
        for cid in state.category_ids:
            ids.update(tree.descendant_ids(cid))
        q &= Q(category_id__in=ids)
    if state.brand_ids:
        q &= Q(brand_id__in=state.brand_ids)
    if state.min_price is not None:
        q &= Q(price__gte=Decimal(state.min_price))
    if state.max_price is not None:
        q &= Q(price__lte=Decimal(state.max_price))
    for word in state.keywords[:4]:
        q &= Q(title__icontains=word) | Q(description__icontains=word) | Q(category__name__icontains=word)
    return q


def _recommend(*, conversation: Conversation, state: DialogueState, action: Action) -> tuple[ChatItem, ...]:
    widget = chat_widget_get()
    customer = conversation.customer
    exclude = set(state.shown) if action.exclude_shown else set()
    anchor = Product.objects.filter(pk=state.anchor).first() if state.anchor else None
    session_items = [state.anchor] if state.anchor else list(state.last_items[:2])
    personal = recommendations_get(
        widget=widget,
        customer=customer,
        visitor=conversation.visitor_id or None,
        product=anchor,
        session_items=session_items,
        k=100,
        log=False,
    )
    q = _constraint_q(state)
    ranked = [r for r in personal if r.product_id not in exclude]
    matching = set(
        Product.objects.filter(q, pk__in=[r.product_id for r in ranked]).values_list("id", flat=True)
    )
    chosen: list[tuple[int, str, str]] = [
        (r.product_id, r.reason or "Picked for you", r.engine) for r in ranked if r.product_id in matching
    ][:ITEMS_PER_REPLY]
    if len(chosen) < ITEMS_PER_REPLY:
        taken = {pid for pid, _, _ in chosen} | exclude
        pool = list(Product.objects.filter(q).exclude(pk__in=taken).values_list("id", flat=True)[:2000])
        pop = product_popularity_get()
        pool.sort(key=lambda pid: (-pop.get(pid, 0), pid))
        chosen += [
            (pid, "Popular match for your request", "popular")
            for pid in pool[: ITEMS_PER_REPLY - len(chosen)]
        ]
    if not chosen:
        return ()
    products = Product.objects.in_bulk([pid for pid, _, _ in chosen])
    request_id = uuid.uuid4()
    now = timezone.now()
    rows, items = [], []
    for pos, (pid, reason, engine) in enumerate(chosen):
        product = products[pid]
        imp = Impression(
            request_id=request_id,
            widget=widget,
            product_id=pid,
            customer=customer,
            visitor_id=conversation.visitor_id,
            position=pos,
            propensity=1.0,
            engine=engine,
            reason=reason[:160],
            created_at=now,
        )
        rows.append(imp)
        items.append(
            ChatItem(
                pid,
                product.title,
                str(product.price),
                product.currency,
                product.get_absolute_url(),
                product.image_url,
                reason,
                str(imp.id),
            )
        )
    impressions_write(rows)
    return tuple(items)


def _describe(state: DialogueState, action: Action, items: tuple[ChatItem, ...]) -> str:
    parts = []
    if state.category_ids:
        names = dict(Category.objects.filter(pk__in=state.category_ids).values_list("id", "name"))
        parts.append(" / ".join(names.get(c, "") for c in state.category_ids).lower())
    if state.brand_ids:
        names = dict(Brand.objects.filter(pk__in=state.brand_ids).values_list("id", "name"))
        parts.append("by " + ", ".join(names.get(b, "") for b in state.brand_ids))
    if state.min_price and state.max_price:
        parts.append(f"between ${state.min_price} and ${state.max_price}")
    elif state.max_price:
        parts.append(f"under ${state.max_price}")
    elif state.min_price:
        parts.append(f"over ${state.min_price}")
    if state.keywords:
        parts.append("matching “" + " ".join(state.keywords) + "”")
    wanted = " ".join(p for p in parts if p) or "you"
    if not items:
        return f"I couldn't find anything {wanted} that I haven't shown you. Try a wider budget or say \"start over\"."
    more = " more" if action.exclude_shown else ""
    if state.anchor:
        return f"Here are {len(items)}{more} products similar to that one ({wanted})."
    return f"Here are {len(items)}{more} suggestions for {wanted}."
