"""Seeded generator and measurements for `manage.py bench_history_recall`.

Each conversation is a long support chat (200-600 items) over one of several shops,
with varied filler built from many templates and slot values, messages of real support
lengths (a customer's one to four sentences, an answer's two to six; questions about stock,
delivery, returns, accounts, troubleshooting; now and then a tool call with its output
and a staff reply), some filler sharing the facts' vocabulary (other orders, other
deliveries, general refund policy) so word matching alone is not enough. In the first
15% of the items, four facts are planted, drawn from `FACTS` (pets, order numbers,
addresses, contact details, sizes, allergies, dates, things already tried, and promises
the assistant or staff made: refunds, call-backs, replacements, vouchers, waived fees,
delivery slots). Exactly one planted fact per conversation is a promise, so an
indirect question ("did what you promised happen?") has one right answer.

Questions come at the end, one at a time (each is rolled back before the next), in
three kinds: `word` shares content words with the fact; `paraphrase` shares none (the
generator checks this with `content_words`, a light stemmer over the full-text stop
list, and refuses a template that breaks it); `indirect` names neither the fact nor its
words ("did what you promised last week happen?"); half of them are phrased in ways the
retriever's facet patterns were not written against (`PROMISE_UNSEEN`, `TRIED_UNSEEN`).
A question recalls its fact when the message stating it is in the selection (or, where
counted, when a customer fact kept from that message is sent).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

from conversations.knowledge.search import STOPWORDS

_EXTRA_STOP = frozenset(
    ["what", "whats", "which", "who", "when", "where", "how", "why", "my", "me", "i", "you", "your", "is", "are", "was", "were", "did", "do", "does", "the", "a", "an", "to", "of", "for", "in", "on", "at", "it", "its", "that", "this", "there", "be", "been", "again", "remind", "tell", "said", "say", "mention", "mentioned", "give", "gave", "back", "now", "still", "yet", "any", "anything", "thing", "things", "something", "last", "week", "earlier", "ago", "time", "before", "told"]
)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "'s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+", text.lower().replace("'", ""))
    return {_stem(w) for w in words if w not in STOPWORDS and w not in _EXTRA_STOP and len(w) > 1}


NAMES = ["Rex", "Biscuit", "Luna", "Pepper", "Mochi", "Bruno", "Nala", "Ziggy", "Olive", "Tofu"]
ANIMALS = ["dog", "puppy", "spaniel", "terrier", "labrador"]
CATS = ["cat", "kitten", "tabby"]
STREETS = ["Elm Street", "Harbour Road", "Kastanienallee", "Rue Oberkampf", "Mill Lane", "Calle Mayor", "Birch Avenue"]
CITIES = ["Springfield", "Leeds", "Berlin", "Lyon", "Porto", "Madrid", "Ghent"]
SURNAMES = ["Okafor", "Lindqvist", "Moreau", "Castellanos", "Whitfield", "Nakamura"]
SISTERS = ["sister", "niece", "daughter", "goddaughter"]
ALLERGENS = [("peanuts", "nuts"), ("shellfish", "prawns"), ("sesame", "seeds"), ("gluten", "wheat")]
APPLIANCES = ["heater", "boiler", "dishwasher", "washing machine", "air purifier"]
PARTS = [("blender", "jug"), ("kettle", "lid"), ("vacuum", "hose"), ("juicer", "basket"), ("mixer", "bowl")]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
PRODUCTS = ["rain jacket", "hiking boots", "desk lamp", "espresso grinder", "wool scarf", "yoga mat", "travel mug",
            "standing desk", "bike helmet", "phone case", "duvet cover", "camping stove", "headphones", "backpack"]
COLOURS = ["black", "navy", "olive", "sand", "burgundy", "grey", "teal"]


@dataclass
class Fact:
    kind: str
    exchange: list[dict[str, Any]]  # the items planted; `index` names the one that states it
    index: int
    word: str
    paraphrase: str
    indirect: str | None = None
    promise: bool = False


def _pet(rng: random.Random) -> Fact:
    name = rng.choice(NAMES)
    animal = rng.choice(ANIMALS)
    user = rng.choice([
        f"My {animal} {name} chews everything, so the toy has to be sturdy.",
        f"It's for {name}, my {animal}; he destroys soft toys within a day.",
    ])
    return Fact("pet", [_u(user), _a("Understood, I'll only suggest the reinforced range.")], 0,
                rng.choice([f"What is my {animal}'s name again?", f"Which {animal} did I say chews everything?"]),
                rng.choice(["What's my pet called?", "Who's the furry friend I'm shopping for?"]))


def _order(rng: random.Random) -> Fact:
    number = f"{rng.choice(['NW', 'QX', 'BT', 'LM'])}-{rng.randrange(10000, 99999)}"
    user = rng.choice([f"The order number is {number}, placed on {rng.choice(DAYS)}.",
                       f"I'm writing about order {number}, it hasn't moved since {rng.choice(DAYS)}."])
    return Fact("order number", [_u(user), _a(f"Thanks, I've got {number} open here.")], 0,
                rng.choice(["Which order number did I give you?", "Can you read the order number back to me?"]),
                rng.choice(["Remind me of the reference for my purchase?", "Which purchase reference am I chasing?"]))


def _address(rng: random.Random) -> Fact:
    street, city = rng.choice(STREETS), rng.choice(CITIES)
    user = rng.choice([f"Ship it to {rng.randrange(2, 99)} {street}, {city} please; that's my new flat.",
                       f"Please send everything to {rng.randrange(2, 99)} {street} in {city} from now on."])
    return Fact("address", [_u(user), _a("Done, the shipping details are updated.")], 0,
                rng.choice([f"Which street in {city} did I give you?", f"What did I say about {street}?"]),
                rng.choice(["Where do I live these days?", "What's my home location?"]))


def _email(rng: random.Random) -> Fact:
    handle = rng.choice(["sam.k", "jo_m", "alex.p", "mira77", "tkw"])
    domain = rng.choice(["example.org", "mailbox.test", "post.example"])
    user = f"You can reach me at {handle}@{domain} for anything about this."
    return Fact("email", [_u(user), _a("Thanks, noted.")], 0,
                "At which address can you reach me?",
                rng.choice(["Which inbox should messages go to?", "Where do I get electronic mail?"]))


def _phone(rng: random.Random) -> Fact:
    number = f"07{rng.randrange(100, 999)} {rng.randrange(100000, 999999)}"
    user = rng.choice([f"My mobile is {number}, call after 6pm only.", f"Call my mobile, {number}, but only after 6pm."])
    return Fact("phone", [_u(user), _a("Got it, evenings only.")], 0,
                "What time should you call my mobile?",
                rng.choice(["When is it okay to ring me?", "At what hour may someone telephone?"]))


def _size(rng: random.Random) -> Fact:
    size = rng.choice(["medium", "large", "small", "XL"])
    user = f"I wear a size {size} in jackets, usually slim fit."
    return Fact("size", [_u(user), _a("Noted for future suggestions.")], 0,
                "What size jackets do I wear?",
                rng.choice(["How big are the coats that suit me?", "Which measurement should clothing be?"]))


def _allergy(rng: random.Random) -> Fact:
    allergen, other = rng.choice(ALLERGENS)
    user = f"I'm allergic to {allergen}, so nothing with {other} in the hamper."
    return Fact("allergy", [_u(user), _a("Of course, I'll flag it on the hamper.")], 0,
                "What am I allergic to?",
                rng.choice(["Which food makes me ill?", "What ingredient must I avoid eating?"]))


def _birthday(rng: random.Random) -> Fact:
    who = rng.choice(SISTERS)
    day = rng.randrange(2, 28)
    user = f"It's a present for my {who}'s birthday on the {day}th of May."
    return Fact("occasion", [_u(user), _a("Lovely, I'll make sure it's wrapped.")], 0,
                f"When is my {who}'s birthday?",
                rng.choice(["Who is the gift for, and what's the occasion?", "Which celebration am I buying for?"]))


def _tried(rng: random.Random) -> Fact:
    user = rng.choice(["I already restarted the router twice and reset it to factory settings.",
                       "I've restarted the router, swapped the cable and reset it to factory settings already."])
    return Fact("tried", [_u(user), _a("Thanks, that rules out the usual suspects.")], 0,
                "Did I mention restarting the router?",
                rng.choice(["What have I done so far to fix the internet box?", "Which steps did I take on my wifi?"]),
                _indirect(rng, ["Remember what I told you I'd done on my side?", "What had I done myself beforehand?"],
                          TRIED_UNSEEN))


def _refund(rng: random.Random) -> Fact:
    amount = rng.choice([18, 25, 40, 62, 75, 120])
    answer = rng.choice([f"I've approved a refund of ${amount} to your card; it should land within five working days.",
                         f"We'll refund you ${amount} for the damaged item, expect it on your card by Friday."])
    return Fact("promise: refund", [_u("The item arrived damaged, what can you do?"), _a(answer)], 1,
                f"When will the ${amount} refund land on my card?",
                rng.choice(["When do I get my money back?", "Has the cash been returned yet?"]),
                _indirect(rng, ["Did what you promised last week actually happen?", "Any news on what you said you'd do?"]),
                promise=True)


def _callback(rng: random.Random) -> Fact:
    appliance = rng.choice(APPLIANCES)
    answer = f"A specialist will phone you tomorrow morning between 9 and 11 about the faulty {appliance}."
    return Fact("promise: call-back", [_u(f"My {appliance} keeps failing, can someone help?"), _a(answer)], 1,
                f"When will the specialist phone me about the {appliance}?",
                rng.choice(["Is somebody going to ring me?", "Who was getting in touch with me, and when?"]),
                _indirect(rng, ["Has the thing you said would happen taken place yet?",
                                "Did what you promised earlier happen?"]), promise=True)


def _replacement(rng: random.Random) -> Fact:
    device, part = rng.choice(PARTS)
    answer = f"We'll ship a replacement {device} {part} free of charge once the courier collects the cracked one."
    return Fact("promise: replacement", [_u(f"The {part} of my {device} cracked on day one."), _a(answer)], 1,
                f"When will the replacement {part} ship?",
                rng.choice(["Are you sending me a fresh part for the broken bit?", "Am I getting another to swap in?"]),
                _indirect(rng, ["Any update on what you agreed to do for me?", "Is what you promised still coming?"]),
                promise=True)


def _voucher(rng: random.Random) -> Fact:
    code = f"SORRY{rng.randrange(10, 99)}"
    answer = f"I've added a 15% voucher, code {code}, for your next purchase as an apology."
    return Fact("promise: voucher", [_u("This is the third late delivery this year."), _a(answer)], 1,
                "What's the voucher code you added?",
                rng.choice(["What reduction do I have for later shopping?", "How much off will I get subsequently?"]),
                _indirect(rng, ["You offered me something earlier, what was it?",
                                "Did that thing you promised go through?"]), promise=True)


def _fee(rng: random.Random) -> Fact:
    amount = rng.choice([12, 15, 20, 35])
    staff = f"I've escalated your case to the billing team; they'll waive the late fee of ${amount}."
    return Fact("promise: waived fee", [_u("Why was I charged a late fee?"), _staff(staff)], 1,
                "Will the late fee be waived?",
                rng.choice(["Will that extra charge be cancelled?", "Am I still paying the penalty?"]),
                _indirect(rng, ["Did that thing you promised get sorted?", "Has what your colleague said gone through?"]),
                promise=True)


def _slot(rng: random.Random) -> Fact:
    day = rng.randrange(3, 28)
    answer = f"Your parcel is booked for delivery on Thursday the {day}th between noon and 4pm."
    return Fact("promise: delivery slot", [_u("Can you pin down the delivery?"), _a(answer)], 1,
                "What time is the parcel delivery on Thursday?",
                rng.choice(["When does my package arrive?", "Which afternoon should I stay home?"]),
                _indirect(rng, ["Is what you told me about the timing still on?",
                                "Did you follow up on what you promised?"]), promise=True)


# Indirect phrasings the facet patterns (`history_semantic._FOLLOW_UP`, `_ASKS_TRIED`)
# were not written against: half the indirect questions use one of these.
PROMISE_UNSEEN = [
    "Where do we stand on the plan from our earlier chat?",
    "Was the arrangement we made before carried out?",
    "I'm still waiting on the outcome we settled on earlier.",
    "Can you confirm the earlier arrangement is on track?",
    "What came of the solution from our previous chat?",
    "Is the fix your team arranged for me moving along?",
]
TRIED_UNSEEN = [
    "Which fixes were attempted before I wrote to you?",
    "What troubleshooting happened at home before this chat?",
    "Recap the steps taken at my place so far, please.",
    "Before contacting support, what did I say I'd attempted?",
]


def _indirect(rng: random.Random, seen: list[str], unseen: list[str] = PROMISE_UNSEEN) -> str:
    return rng.choice(unseen if rng.random() < 0.5 else seen)


PLAIN_FACTS = [_pet, _order, _address, _email, _phone, _size, _allergy, _birthday, _tried]
PROMISES = [_refund, _callback, _replacement, _voucher, _fee, _slot]


def _u(text: str) -> dict[str, Any]:
    return {"kind": "user", "text": text}


def _a(text: str) -> dict[str, Any]:
    return {"kind": "assistant", "text": text}


def _staff(text: str) -> dict[str, Any]:
    return {"kind": "staff", "text": text, "metadata": {"author_name": "Dana"}}


USER_FILLER = [
    "Do you have the {p} in {c}?", "How long does shipping take to {city}?", "Is the {p} waterproof?",
    "Can I return the {p} if it doesn't fit?", "What's the warranty on the {p}?", "Is there a discount on the {p}?",
    "My friend ordered a {p} last month, is it the same model?", "Does the {p} come with a manual?",
    "Can I pay by bank transfer?", "Do you ship on weekends?", "How heavy is the {p}?",
    "What is your general refund policy for sale items?", "Can I change my password?", "Is the {p} in stock at all?",
    "Could you compare the {p} with the cheaper one?", "Where is your warehouse?", "I saw the {p} on Instagram, nice.",
    "Do you plant a tree per order?", "What does express delivery cost?", "Is the {c} one darker than the photo?",
    "Can I order a {p} as a gift with a note?", "Which size of {p} do most people pick?", "Can I track parcels by text?",
    "Does the {p} need batteries?", "How do I clean the {p}?", "Are your boxes recyclable?",
    "I might also want a {p} later.", "What are your opening hours?", "Is the {p} made in Europe?",
    "Do you price match?", "Okay, and what about the {p}?", "Great, thanks. One more question.",
]
ASSISTANT_FILLER = [
    "Yes, the {p} comes in {c} and two other colours.", "Shipping to {city} usually takes {n} working days.",
    "The {p} is splash-proof but not for swimming.", "Returns are free within 30 days if the item is unused.",
    "The {p} has a two-year warranty.", "There's {n}% off the {p} this week.", "It's the same model, updated colours.",
    "Yes, a printed guide is in the box.", "Bank transfer is possible for orders over 200.",
    "Couriers deliver Monday to Saturday.", "It weighs about {n}00 grams.",
    "Sale items can be returned for store credit.", "Use the reset link on the sign-in page.",
    "We have {n} left in the main warehouse.", "The cheaper one has fewer features but the same build.",
    "Our warehouse is near {city}.", "Thanks! It's one of our best sellers.", "We do, for every order over 50.",
    "Express costs 9.90 and arrives next day.", "The {c} is slightly darker in daylight.",
    "Sure, add the note at checkout.", "Most people pick medium.", "Text tracking is available for all parcels.",
    "No batteries needed.", "A damp cloth is enough.", "All our boxes are recyclable cardboard.",
    "Happy to help whenever you're ready.", "We're here 8am to 8pm every day.", "Yes, it's made in Portugal.",
    "We match prices from major retailers.", "Let me know what else you need.", "Of course, go ahead.",
    "I'll check that and come back to you in this chat.",
]


# Sentences around the filler's question and answer, so messages have the length of
# real support messages (a customer's 1-4 sentences, an answer's 2-6) rather than one line.
USER_CONTEXT = [
    "I'm planning a trip to {city} next month and want to pack light.",
    "My partner saw the {p} in a shop window and loved it.",
    "Sorry if this was asked before, your site search didn't help much.",
    "I've been a customer for a few years and usually order around the holidays.",
    "The product page says one thing and the FAQ another, so I'm a bit confused.",
    "It would be a gift, so presentation matters quite a lot to me.",
    "I'm comparing a couple of shops before deciding, to be honest.",
    "We have a small flat, so anything bulky is a problem.",
    "Last time the courier left a card even though someone was home.",
    "I read a review saying the {c} fades in sunlight, is that true?",
    "No rush on this, I'm just gathering information for now.",
    "Thanks for the quick replies so far, it's appreciated.",
]
ASSISTANT_CONTEXT = [
    "Good question, a lot of customers ask about this.",
    "Our product pages are updated every week, so the details there are the most current.",
    "If you need more detail, the specification sheet is linked under the photos.",
    "Prices shown include VAT and are the same online and in our shops.",
    "Please note stock levels change quickly during the sale period.",
    "You can also see the care instructions on the label inside the packaging.",
    "Customers in {city} often choose collection from a pickup point instead.",
    "Our reviews section has photos from buyers if you'd like to see it in real life.",
    "We test every batch before it leaves the warehouse.",
    "Anything else on your list, just ask here and I'll look it up.",
    "For bigger orders our sales team can prepare a written quote.",
    "The {c} version is popular this season, so it may sell out.",
]


def _sentences(rng: random.Random, pool: list[str], low: int, high: int, slots: dict[str, Any]) -> list[str]:
    return [t.format(**slots) for t in rng.sample(pool, rng.randrange(low, high + 1))]


def _filler(rng: random.Random) -> list[dict[str, Any]]:
    slots = {"p": rng.choice(PRODUCTS), "c": rng.choice(COLOURS), "city": rng.choice(CITIES), "n": rng.randrange(2, 9)}
    question = rng.choice(USER_FILLER).format(**slots)
    user = " ".join([*_sentences(rng, USER_CONTEXT, 0, 2, slots), question, *_sentences(rng, USER_CONTEXT, 0, 1, slots)])
    answer = " ".join([*_sentences(rng, ASSISTANT_CONTEXT, 0, 2, slots), rng.choice(ASSISTANT_FILLER).format(**slots),
                       *_sentences(rng, ASSISTANT_CONTEXT, 1, 3, slots)])
    return [_u(user), _a(answer)]


@dataclass
class Case:
    items: list[dict[str, Any]]
    facts: list[tuple[Fact, int]]  # the fact and the position of its statement in `items`
    questions: list[tuple[str, str, int]] = field(default_factory=list)  # (kind, text, fact position)


def generate(rng: random.Random) -> Case:
    """One conversation: 200-600 items, four facts (one of them a promise) in the first
    15%, and its questions."""
    target = rng.randrange(200, 601)
    facts = [f(rng) for f in rng.sample(PLAIN_FACTS, 3)] + [rng.choice(PROMISES)(rng)]
    rng.shuffle(facts)
    early = max(len(facts) * 2 + 2, int(target * 0.15))
    spots = sorted(rng.sample(range(1, early // 2), len(facts)))
    items: list[dict[str, Any]] = []
    placed: list[tuple[Fact, int]] = []
    exchange = 0
    pending = list(zip(spots, facts, strict=True))
    while len(items) < target:
        if pending and pending[0][0] == exchange:
            _, fact = pending.pop(0)
            placed.append((fact, len(items) + fact.index))
            items += [dict(item) for item in fact.exchange]
        else:
            items += _filler(rng)
            if rng.random() < 0.05:
                call = f"call_{len(items)}"
                product = rng.choice(PRODUCTS)
                items += [
                    {"kind": "function_call", "call_id": call, "tool_name": "check_stock",
                     "tool_arguments": json.dumps({"product": product})},
                    {"kind": "function_output", "call_id": call, "tool_name": "check_stock",
                     "text": json.dumps({"product": product, "in_stock": rng.random() < 0.7,
                                         "ships_in_days": rng.randrange(1, 5)})},
                ]
            if rng.random() < 0.02:
                items.append(_staff(rng.choice(["Jumping in to say the sale ends Sunday.",
                                                "I've checked with the warehouse, all good on that."])))
        exchange += 1
    case = Case(items, placed)
    for fact, position in placed:
        statement = items[position]["text"]
        if content_words(fact.paraphrase) & content_words(statement):
            raise ValueError(f"paraphrase shares words: {fact.paraphrase!r} / {statement!r}")
        if not content_words(fact.word) & content_words(statement):
            raise ValueError(f"word question shares none: {fact.word!r} / {statement!r}")
        case.questions += [("word", fact.word, position), ("paraphrase", fact.paraphrase, position)]
        if fact.indirect:
            case.questions.append(("indirect", fact.indirect, position))
    return case


def generate_all(count: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    return [generate(rng) for _ in range(count)]
