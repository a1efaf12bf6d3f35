"""Storefront forms: every query parameter and every post is validated here before a view uses it."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from .models import Customer
from .selectors import SORT_CHOICES
from .services.cart import MAX_LINE_QUANTITY

PRICE_MAX = Decimal("9999999999.99")
MAX_QUERY_LENGTH = 200


class ListingForm(forms.Form):
    """Filters and sort of a category listing or a search (GET). Invalid fields are dropped, with a
    message, rather than failing the page."""

    q = forms.CharField(required=False, max_length=MAX_QUERY_LENGTH, strip=True)
    price_min = forms.DecimalField(required=False, min_value=0, max_value=PRICE_MAX, decimal_places=2)
    price_max = forms.DecimalField(required=False, min_value=0, max_value=PRICE_MAX, decimal_places=2)
    brand = forms.MultipleChoiceField(required=False, choices=())
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)
    in_stock = forms.BooleanField(required=False)

    def __init__(self, *args, brand_choices: list[tuple[str, str]] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["brand"].choices = list(brand_choices)
        self.fields["price_min"].widget.attrs.update(
            {"placeholder": "Min", "inputmode": "decimal", "step": "any"}
        )
        self.fields["price_max"].widget.attrs.update(
            {"placeholder": "Max", "inputmode": "decimal", "step": "any"}
        )

    def clean(self) -> dict:
        data = super().clean()
        lo, hi = data.get("price_min"), data.get("price_max")
        if lo is not None and hi is not None and lo > hi:
            # A swapped range is an obvious slip; answer what was meant.
            data["price_min"], data["price_max"] = hi, lo
        return data

    def usable(self) -> dict:
        """The valid values (defaults for the rest) and a list of friendly messages for the invalid ones."""
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        values = {
            "q": cleaned.get("q") or "",
            "price_min": cleaned.get("price_min"),
            "price_max": cleaned.get("price_max"),
            "brand": cleaned.get("brand") or [],
            "sort": cleaned.get("sort") or "",
            "in_stock": bool(cleaned.get("in_stock")),
        }
        labels = {
            "q": "Search text",
            "price_min": "Minimum price",
            "price_max": "Maximum price",
            "brand": "Brand",
            "sort": "Sort order",
        }
        messages = []
        for name, errors in self.errors.items():
            if name == "brand":
                messages.append("An unknown brand in the filter was ignored.")
            elif name in labels:
                messages.append(f"{labels[name]} ignored: {errors[0]}")
        return {"values": values, "messages": messages}


class AddToCartForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=MAX_LINE_QUANTITY, initial=1)
    impression_id = forms.UUIDField(required=False, widget=forms.HiddenInput)
    next = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)


class CartUpdateForm(forms.Form):
    quantity = forms.IntegerField(min_value=0, max_value=MAX_LINE_QUANTITY)


class CheckoutForm(forms.Form):
    name = forms.CharField(
        label="Full name", max_length=120, strip=True, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if not name.strip():
            raise forms.ValidationError("Please give the name for the delivery.")
        return name


class SignUpForm(UserCreationForm):
    """The auth user plus the shopper profile (all optional) and the personalization choice."""

    email = forms.EmailField(
        required=True, max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    age_band = forms.ChoiceField(required=False, choices=Customer.AgeBand.choices, label="Age (optional)")
    gender = forms.ChoiceField(required=False, choices=Customer.Gender.choices, label="Gender (optional)")
    region = forms.CharField(required=False, max_length=64, label="Region (optional)")
    consent = forms.ChoiceField(
        choices=Customer.Consent.choices,
        initial=Customer.Consent.BASIC,
        widget=forms.RadioSelect,
        label="Personalization",
        help_text="You can change this at any time on your account page.",
    )

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email exists already. Log in instead?")
        return email


class ProfileForm(forms.ModelForm):
    """Privacy choices and the optional demographics, editable on the account page."""

    class Meta:
        model = Customer
        fields = ("consent", "age_band", "gender", "region")
        widgets = {"consent": forms.RadioSelect}
        labels = {"consent": "Personalization", "age_band": "Age", "region": "Region"}
