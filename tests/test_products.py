"""Which products a query names (matcher/products.py), and what naming one does to a ranking."""

from __future__ import annotations

import pytest

from matcher.products import ProductNames

PRODUCTS = ["Vélonia Cita", "vélonia duo", "Vélonia Kit Libre", "VanMoof S5", "Tern GSD", "homelive"]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("la cita est-elle confortable ?", ("velonia cita",)),  # a word no other product has
        ("Cita ou VanMoof S5 ?", ("vanmoof s5", "velonia cita")),  # a competitor's product is a product
        ("le kit marche sur mon vieux vélo ?", ("velonia kit libre",)),
        ("c'est quoi Vélonia ?", ()),  # the brand's word belongs to every product: names none
        ("HOMELIVE, c'est sorti ?", ("homelive",)),  # case and accents ignored
        ("un vélo pour la ville", ()),
        ("", ()),
    ],
)
def test_a_query_names_a_product_by_its_words_or_a_distinctive_one(query, named):
    assert ProductNames(PRODUCTS, {}).named_in(query) == named


def test_aliases_name_their_product_and_stop_words_never_do():
    names = ProductNames([*PRODUCTS, "La Box"], {"le biporteur": "vélonia duo"})
    assert names.named_in("le biporteur pour deux enfants") == ("velonia duo",)
    assert names.named_in("la box") == ("la box",)  # all of its words
    assert names.named_in("c'est la fête") == ()  # 'la' is a stop word, not a distinctive word


def test_a_named_product_favours_content_about_it(engine):
    """'Livebox' is a product of the fixtures: a query naming it scores each piece's `product` part, 1 for the
    pieces tagged with it, 0 for the others; a query naming none has no such part."""
    named = engine.match("technical_validation", "installer le hub sur ma Livebox", limit=60, types=["content"])
    parts = {r.row["id"]: r.parts["product"] for r in named.content}
    tagged = {r.row["id"] for r in named.content if "livebox" in [p.lower() for p in r.row["products"]]}
    assert tagged and set(parts) - tagged  # both cases occur
    assert all(parts[i].value == (1.0 if i in tagged else 0.0) for i in parts)
    assert all(parts[i].reason.startswith("about livebox") for i in tagged)
    ranks = [r.row["id"] in tagged for r in named.content]
    assert all(ranks[:10]) and not all(ranks[10:])  # they lead the list
    plain = engine.match("technical_validation", "installer le hub", limit=5, types=["content"])
    assert all("product" not in r.parts for r in plain.content)
    people = engine.match("technical_validation", "installer le hub sur ma Livebox", limit=10, types=["influencers"])
    assert all(r.parts["product"].value in (0.0, 1.0) for r in people.influencers)
    assert any(r.parts["product"].value == 1.0 for r in people.influencers)
