"""Storefront views (thin: validate with forms, read through selectors, write through services, render).

Bad input never raises a 500: unknown categories/products/orders are 404 pages, invalid filters are
ignored with a message, bad page numbers show the nearest page, bad posts re-render with the error.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import selectors
from .forms import AddToCartForm, CartUpdateForm, CheckoutForm, ListingForm, ProfileForm, SignUpForm
from .models import Product
from .services import (
    CART_SESSION_KEY,
    CartError,
    CheckoutError,
    ProductUnavailable,
    cart_clear,
    cart_impressions_read,
    cart_item_add,
    cart_item_remove,
    cart_item_update,
    cart_read,
    customer_ensure_for_user,
    customer_profile_update,
    customer_register,
    order_place,
    shopper_from_request,
    visitor_link,
)

PAGE_SIZE = 24
ORDERS_SESSION_KEY = "orders_placed"


# --- browsing ------------------------------------------------------------------------------------


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "catalog/home.html",
        {
            "root_categories": selectors.category_menu_get(),
            "new_products": selectors.products_newest(limit=8),
        },
    )


def _listing(request: HttpRequest, *, category=None, search: bool = False) -> dict:
    """Shared by category pages and search: validate parameters, filter, sort, paginate."""
    raw_query = (request.GET.get("q") or "").strip()[:200] if search else ""
    # The facets (brands, price range) describe the category or the search results before filtering.
    facet_base = selectors.products_filter(category=category, query=raw_query)
    facets = selectors.brand_facets_get(products=facet_base) if (category is not None or raw_query) else []
    form = ListingForm(request.GET, brand_choices=[(b.slug, b.name) for b in facets])
    usable = form.usable()
    values = usable["values"]
    notices = list(usable["messages"])
    query = values["q"] if search else ""

    products = selectors.products_filter(
        category=category,
        query=query,
        brand_slugs=values["brand"],
        price_min=values["price_min"],
        price_max=values["price_max"],
        in_stock_only=values["in_stock"],
    )
    sort = values["sort"] or ("relevance" if query else "popular")
    if sort == "relevance" and not query:
        sort = "popular"
    ordered = selectors.products_sort(products=products, sort=sort, query=query)

    paginator = Paginator(ordered, PAGE_SIZE, allow_empty_first_page=True)
    raw_page = request.GET.get("page", "1")
    page = paginator.get_page(raw_page)  # non-numbers -> first page, too large -> last page
    if raw_page not in ("", str(page.number)):
        notices.append(
            f"There is no page {raw_page[:20]}; showing page {page.number} of {paginator.num_pages}."
        )
    items = list(page.object_list)
    if items and isinstance(items[0], int):
        items = selectors.products_in_order(ids=items)
    lo, hi = selectors.price_bounds_get(products=facet_base)
    return {
        "form": form,
        "values": values,
        "notices": notices,
        "products": items,
        "page_obj": page,
        "page_range": list(paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1)),
        "paginator": paginator,
        "brand_facets": facets,
        "sort": sort,
        "sort_choices": [c for c in selectors.SORT_CHOICES if c[0] != "relevance" or query],
        "price_lo": lo,
        "price_hi": hi,
        "query": query,
        "filters_active": bool(
            values["brand"]
            or values["price_min"] is not None
            or values["price_max"] is not None
            or values["in_stock"]
        ),
    }


@require_GET
def category_detail(request: HttpRequest, slug: str) -> HttpResponse:
    category = selectors.category_get(slug=slug)
    if category is None:
        raise Http404("No such category.")
    tree = selectors.category_tree_get(must_include=category.pk)
    context = _listing(request, category=category)
    context.update(
        category=category,
        breadcrumbs=category.ancestors()[:-1],
        subcategories=tree.children_of(category.pk),
    )
    return render(request, "catalog/category.html", context)


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    context = _listing(request, search=True)
    if not context["query"]:
        context["products"] = []
        context["suggestions"] = selectors.products_popular(limit=8)
    return render(request, "catalog/search.html", context)


@require_GET
def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    product = selectors.product_get(pk=pk)
    if product is None:
        raise Http404("No such product.")
    cart = cart_read(session=request.session)
    attributes = product.attributes if isinstance(product.attributes, dict) else {}
    return render(
        request,
        "catalog/product.html",
        {
            "product": product,
            "breadcrumbs": product.category.ancestors(),
            "attributes": sorted(
                ((str(k).replace("_", " "), v) for k, v in attributes.items()), key=lambda kv: kv[0]
            ),
            "form": AddToCartForm(initial={"quantity": 1}),
            "in_cart": cart.get(str(product.pk), 0),
        },
    )


@require_GET
@cache_control(max_age=86400, public=True)
def product_image(request: HttpRequest, pk: int) -> HttpResponse:
    """A generated SVG placeholder: the category's colour and the product's initials."""
    product = get_object_or_404(Product.objects.select_related("category"), pk=pk)
    hue = (product.category_id * 47) % 360
    initials = "".join(w[0] for w in product.title.split()[:2] if w).upper()
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240" viewBox="0 0 320 240">'
        f'<rect width="320" height="240" fill="hsl({hue},45%,88%)"/>'
        f'<text x="160" y="135" font-family="sans-serif" font-size="56" text-anchor="middle" '
        f'fill="hsl({hue},40%,35%)">{escape(initials)}</text></svg>'
    )
    return HttpResponse(svg, content_type="image/svg+xml")


# --- cart ----------------------------------------------------------------------------------------


def _safe_next(request: HttpRequest, candidate: str | None, default: str) -> str:
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()}):
        return candidate
    return default


@require_GET
def cart_detail(request: HttpRequest) -> HttpResponse:
    cart = cart_read(session=request.session)
    summary = selectors.cart_summary_get(
        cart=cart, impressions=cart_impressions_read(session=request.session)
    )
    if summary.missing_ids:
        missing = {str(pid) for pid in summary.missing_ids}
        request.session[CART_SESSION_KEY] = {k: v for k, v in cart.items() if k not in missing}
        messages.info(request, "Some products in your cart are not sold any more and were removed from it.")
    return render(request, "catalog/cart.html", {"cart": summary})


@require_POST
def cart_add(request: HttpRequest, pk: int) -> HttpResponse:
    form = AddToCartForm(request.POST)
    fallback = reverse("catalog:product", args=[pk])
    if not form.is_valid():
        errors = "; ".join(
            f"{form.fields[f].label or f}: {e[0]}" if f != "__all__" else e[0] for f, e in form.errors.items()
        )
        messages.error(request, f"Could not add to cart. {errors}")
        return redirect(_safe_next(request, request.POST.get("next"), fallback))
    try:
        change = cart_item_add(
            session=request.session,
            product_id=pk,
            quantity=form.cleaned_data["quantity"],
            shopper=shopper_from_request(request),
            impression_id=form.cleaned_data.get("impression_id"),
        )
    except ProductUnavailable:
        raise Http404("No such product.") from None
    except CartError as exc:
        messages.error(request, str(exc))
        return redirect(_safe_next(request, form.cleaned_data.get("next"), fallback))
    product = Product.objects.only("title").get(pk=change.product_id)
    messages.success(request, f"Added {change.delta} × “{product.title}” to your cart.")
    return redirect(_safe_next(request, form.cleaned_data.get("next"), reverse("catalog:cart")))


@require_POST
def cart_update(request: HttpRequest, pk: int) -> HttpResponse:
    form = CartUpdateForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Quantity: {form.errors['quantity'][0]}")
        return redirect("catalog:cart")
    try:
        change = cart_item_update(
            session=request.session,
            product_id=pk,
            quantity=form.cleaned_data["quantity"],
            shopper=shopper_from_request(request),
        )
    except CartError as exc:
        messages.error(request, str(exc))
    else:
        if change.delta:
            messages.success(request, "Cart updated." if change.quantity else "Removed from your cart.")
    return redirect("catalog:cart")


@require_POST
def cart_remove(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        cart_item_remove(session=request.session, product_id=pk, shopper=shopper_from_request(request))
    except CartError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Removed from your cart.")
    return redirect("catalog:cart")


# --- checkout ------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest) -> HttpResponse:
    cart = cart_read(session=request.session)
    summary = selectors.cart_summary_get(
        cart=cart, impressions=cart_impressions_read(session=request.session)
    )
    if summary.is_empty and request.method == "GET":
        messages.info(request, "Your cart is empty: add something before checking out.")
        return redirect("catalog:cart")
    customer = selectors.customer_for_user_get(user=request.user)
    if request.method == "POST":
        form = CheckoutForm(request.POST)
        if form.is_valid():
            try:
                order = order_place(
                    cart=cart,
                    impressions=cart_impressions_read(session=request.session),
                    shopper=shopper_from_request(request, customer=customer),
                    name=form.cleaned_data["name"],
                    email=form.cleaned_data["email"],
                )
            except CheckoutError as exc:
                for problem in exc.problems:
                    messages.error(request, problem)
                if summary.is_empty:
                    return redirect("catalog:cart")
            else:
                cart_clear(session=request.session)
                placed = request.session.get(ORDERS_SESSION_KEY, [])
                request.session[ORDERS_SESSION_KEY] = (
                    [*placed, order.pk] if isinstance(placed, list) else [order.pk]
                )[-20:]
                messages.success(request, f"Thank you! Your order #{order.pk} is placed.")
                return redirect("catalog:order", pk=order.pk)
    else:
        user = request.user
        initial = {}
        if user.is_authenticated:
            initial = {"name": user.get_full_name() or user.get_username(), "email": user.email}
        form = CheckoutForm(initial=initial)
    return render(request, "catalog/checkout.html", {"form": form, "cart": summary})


@require_GET
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An order confirmation: visible to its customer, or to the browser session that placed it."""
    order = selectors.order_get(pk=pk)
    if order is None:
        raise Http404("No such order.")
    customer = selectors.customer_for_user_get(user=request.user)
    placed_here = pk in (request.session.get(ORDERS_SESSION_KEY) or [])
    if not placed_here and (customer is None or order.customer_id != customer.pk):
        raise Http404("No such order.")
    return render(request, "catalog/order.html", {"order": order, "lines": list(order.lines.all())})


# --- accounts ------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("catalog:account")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        customer = customer_register(
            username=data["username"],
            email=data["email"],
            password=data["password1"],
            age_band=data.get("age_band") or "",
            gender=data.get("gender") or "",
            region=data.get("region") or "",
            consent=data["consent"],
        )
        auth_login(request, customer.user, backend="django.contrib.auth.backends.ModelBackend")
        visitor_link(visitor_id=getattr(request, "visitor_id", ""), customer=customer)
        messages.success(request, f"Welcome, {customer.user.get_username()}! Your account is ready.")
        return redirect(_safe_next(request, request.GET.get("next"), reverse("catalog:account")))
    return render(request, "registration/signup.html", {"form": form})


class LoginView(auth_views.LoginView):
    """Django's login, then the browser's visitor id (and its anonymous history) joins the customer."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form) -> HttpResponseRedirect:
        response = super().form_valid(form)
        customer = customer_ensure_for_user(user=form.get_user())
        visitor_link(visitor_id=getattr(self.request, "visitor_id", ""), customer=customer)
        return response


class LogoutView(auth_views.LogoutView):
    pass


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    customer = customer_ensure_for_user(user=request.user)
    if request.method == "POST":
        form = ProfileForm(request.POST, instance=customer)
        if form.is_valid():
            data = form.cleaned_data
            customer_profile_update(
                customer=customer,
                age_band=data["age_band"],
                gender=data["gender"],
                region=data["region"],
                consent=data["consent"],
            )
            messages.success(request, "Your privacy choices are saved.")
            return redirect("catalog:account")
        customer.refresh_from_db()
    else:
        form = ProfileForm(instance=customer)
    return render(
        request,
        "catalog/account.html",
        {
            "customer": customer,
            "form": form,
            "orders": selectors.customer_orders_list(customer=customer),
            "recently_viewed": selectors.products_recently_viewed(
                customer=customer, visitor_id=getattr(request, "visitor_id", ""), limit=8
            ),
        },
    )
