"""A labelled set for knowledge-base search (`manage.py bench_knowledge_search`): help
documents of a fictional coffee-equipment shop ("Northwind Coffee Co.") and customer
questions labelled with the document(s) that answer them.

Documents (>= 150, Markdown, a title and `##` sections each) come from several
families, each written differently: troubleshooting articles per product and symptom,
care guides per product, hand-written policy, shipping, payment, account,
subscription, app and business articles, and one shipping page per destination. They
share a footer and product names, as a real help centre does, so common words are
common.

Questions (>= 200), three kinds:
- `short`: a natural question, worded differently from the title (a paraphrase, a
  symptom as the customer sees it);
- `long`: a 3-6 sentence scenario around a short question: greetings, an order id,
  an amount, a phone number, a date, details that do not matter;
- `title`: the exact title (as typed: sometimes lower-case, without punctuation).

`split(questions)` separates a tuning split (weights are chosen on it) from the
held-out split the reported figures come from; the split is by question, seeded.
Everything is generated from `seed`, so a run is reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

FOOTER = (
    "## Still need help?\n\nIf this did not solve it, contact our support team through the chat "
    "or by email with your order number, and we will help you as soon as possible."
)


@dataclass
class Doc:
    key: str
    title: str
    body: str
    questions: list[str] = field(default_factory=list)  # short natural questions


@dataclass(frozen=True)
class Question:
    kind: str  # short | long | title
    text: str
    labels: tuple[str, ...]  # keys of the documents that answer it


@dataclass(frozen=True)
class Product:
    key: str
    name: str
    model: str
    nicknames: tuple[str, ...]
    part: str
    code: str


PRODUCTS = [
    Product("espresso", "Aurora espresso machine", "AX-200", ("espresso machine", "coffee machine", "Aurora"),
            "portafilter gasket", "E12"),
    Product("grinder", "Burrmaster burr grinder", "BG-45", ("grinder", "coffee grinder", "Burrmaster"),
            "upper burr", "E31"),
    Product("kettle", "Swan-neck electric kettle", "SK-10", ("kettle", "gooseneck kettle", "pour-over kettle"),
            "base plate", "E05"),
    Product("frother", "Cloud milk frother", "MF-3", ("milk frother", "frother", "foamer"),
            "whisk disc", "E07"),
    Product("scale", "Precision brew scale", "PS-1", ("scale", "coffee scale", "brew scale"),
            "load cell", "E02"),
    Product("mug", "Thermo smart mug", "TM-8", ("smart mug", "heated mug", "travel mug"),
            "charging coaster", "E44"),
    Product("drip", "Morning drip brewer", "DB-12", ("drip coffee maker", "filter machine", "brewer"),
            "shower head", "E21"),
    Product("coldbrew", "Glacier cold brew maker", "CB-2", ("cold brew maker", "cold brew jar", "Glacier"),
            "mesh filter", "E09"),
    Product("nomad", "Nomad portable espresso maker", "NP-5", ("portable espresso maker", "travel espresso",
            "Nomad"), "pump piston", "E15"),
    Product("roaster", "Pulse home roaster", "HR-1", ("roaster", "home roaster", "bean roaster"),
            "chaff collector", "E52"),
    Product("water", "Clearflow filter jug", "FJ-4", ("filter jug", "water jug", "Clearflow"),
            "cartridge seal", "E03"),
]

DRY_PRODUCTS = {"grinder", "scale", "roaster"}  # nothing to descale

SYMPTOMS: dict[str, dict[str, Any]] = {
    "power": {
        "title": "{name} does not turn on",
        "asks": ["my {nick} won't switch on at all", "nothing happens when I press the power button on the {nick}",
                 "{nick} is dead, no lights"],
        "sections": [
            ("Check the power supply", "Plug another appliance into the same socket to rule out the outlet. "
             "Make sure the cable is pushed fully into the {model} and that any power strip is switched on."),
            ("Reset the thermal fuse", "After overheating the {name} cuts power to protect itself. Unplug it, "
             "let it cool for 30 minutes and try again."),
            ("Still no lights", "If the display stays dark, the control board may have failed. This is covered "
             "by the two-year warranty; start a warranty claim with the serial number from the base."),
        ],
    },
    "leak": {
        "title": "{name} is leaking water",
        "asks": ["water is dripping under my {nick}", "there's a puddle around the {nick} after I use it",
                 "my {nick} leaks"],
        "sections": [
            ("Where the water comes from", "A puddle under the {model} usually means a worn {part} or a "
             "reservoir that is not seated. Wipe the unit dry and run it once to see where drops appear."),
            ("Replace the {part}", "The {part} wears with use and hardens with limescale. A replacement ships "
             "free within the warranty; fitting it takes two minutes and no tools."),
            ("Cracks in the housing", "If water escapes through the casing, stop using the appliance and unplug "
             "it. A cracked housing is replaced under warranty."),
        ],
    },
    "error": {
        "title": "{name} shows error {code}",
        "asks": ["what does {code} mean on the {nick}", "my {nick} display is flashing {code}",
                 "{nick} stopped with code {code}"],
        "sections": [
            ("What {code} means", "Error {code} on the {model} is raised by the sensor self-test: the unit "
             "measured a temperature or weight outside its safe range and stopped."),
            ("Clear the error", "Switch off, unplug for ten seconds, plug back in and hold the main button for "
             "five seconds. The self-test runs again and the code clears if the fault is gone."),
            ("When the code returns", "A code that comes back after a reset points to a faulty sensor. Note the "
             "code and the serial number and contact us for a repair or a replacement."),
        ],
    },
    "noise": {
        "title": "{name} is making a strange noise",
        "asks": ["my {nick} is really loud and rattles", "grinding or squeaking sound from the {nick}",
                 "{nick} buzzes more than it used to"],
        "sections": [
            ("Normal sounds", "A hum and short clicks are normal for the {model} while it heats or runs. A "
             "rattle, squeal or scraping sound is not."),
            ("Loose or worn parts", "Check that the {part} is fitted and tight; a loose part vibrates against "
             "the housing. Debris such as a stone among the beans can also jam moving parts."),
            ("Get it checked", "If the noise continues, stop using it to avoid further damage and request a "
             "repair. Repairs within warranty are free, including the courier both ways."),
        ],
    },
    "app": {
        "title": "{name} will not connect to the app",
        "asks": ["the Northwind app can't find my {nick}", "bluetooth pairing with the {nick} fails",
                 "how do I link the {nick} to my phone"],
        "sections": [
            ("Before pairing", "Turn on Bluetooth and location on your phone, keep it within two metres of the "
             "{model} and close other apps that use Bluetooth."),
            ("Pair again", "In the Northwind app open Devices, remove the {name} if it is listed, then hold the "
             "power button for eight seconds until the light blinks blue and add it again."),
            ("Update the firmware", "Older firmware cannot pair with the current app. Connect the device by "
             "cable to the desktop updater, or ask us to send an update link."),
        ],
    },
}

CARE: dict[str, dict[str, Any]] = {
    "descale": {
        "title": "How to descale the {name}",
        "asks": ["how do I get rid of limescale in my {nick}", "white crust inside the {nick}, how to clean it",
                 "what should I use to decalcify the {nick}"],
        "sections": [
            ("How often", "Limescale builds up as a white, chalky crust inside the {model}. In hard-water areas "
             "descale it every month; with soft or filtered water every three months is enough."),
            ("Descaling step by step", "Dissolve one sachet of Northwind descaler (or two tablespoons of citric "
             "acid) in a litre of water, run it through, wait 20 minutes, then rinse twice with clean water."),
            ("What not to use", "Do not use vinegar on the {part}: it degrades rubber and leaves a smell."),
        ],
    },
    "parts": {
        "title": "Spare parts for the {name}",
        "asks": ["where can I buy a new {part} for my {nick}", "replacement {part} for {model}",
                 "do you sell spares for the {nick}"],
        "sections": [
            ("Parts you can order", "For the {model} we sell the {part}, seals, the power cable and the user "
             "manual. Each part page lists the serial numbers it fits."),
            ("Finding your model", "The model number ({model}) and serial number are printed on the label "
             "underneath the appliance."),
            ("Parts under warranty", "A part that fails within the warranty period is sent free of charge."),
        ],
    },
}

# Hand-written articles: key, title, sections, short natural questions.
ARTICLES: list[tuple[str, str, list[tuple[str, str]], list[str]]] = [
    ("returns", "Returning an item", [
        ("Return window", "You can return unused items within 30 days of delivery. Start the return from "
         "Orders in your account and print the prepaid label."),
        ("Condition", "Items must be unused and in their original packaging with all accessories."),
        ("Items that cannot be returned", "Opened coffee beans, descaler and gift cards cannot be returned "
         "unless faulty.")],
     ["can I send back something I bought two weeks ago", "how do I send an unwanted item back"]),
    ("refund-timing", "When will I get my refund?", [
        ("Processing time", "Once the warehouse receives your parcel we inspect it within three working days "
         "and issue the refund to the original payment method."),
        ("Bank delays", "Card refunds take 5 to 10 business days to appear on your statement; PayPal refunds "
         "usually appear within 24 hours.")],
     ["my money still hasn't come back after returning", "how long do refunds take to show up on my card"]),
    ("exchange", "Exchanging an item for a different size or colour", [
        ("How exchanges work", "Request an exchange from Orders, choose the new variant and we ship it as soon "
         "as the original is scanned by the carrier."),
        ("Price differences", "If the new variant costs more you pay the difference; if less, we refund it.")],
     ["can I swap the black mug for the white one", "I want a different colour instead"]),
    ("damaged", "My order arrived damaged", [
        ("Report within 48 hours", "Take photos of the item and the box and report the damage from Orders "
         "within 48 hours of delivery."),
        ("Replacement or refund", "We send a replacement at no cost or refund you in full, whichever you "
         "prefer. You do not need to return broken glass.")],
     ["the carafe was broken when the box came", "package came smashed, what now"]),
    ("wrong-item", "I received the wrong item", [
        ("What to do", "Tell us what you ordered and what arrived, with a photo of the label. We send the "
         "right item by express delivery and a label to return the wrong one.")],
     ["you sent me a kettle but I ordered a grinder", "this is not what I ordered"]),
    ("missing-item", "An item is missing from my order", [
        ("Split shipments", "Large orders sometimes ship in several parcels; check the tracking page for a "
         "second parcel before reporting."),
        ("Report it", "If everything has arrived and an item is missing, report it from Orders and we send it "
         "again.")],
     ["only part of my order arrived", "one of the things I paid for wasn't in the box"]),
    ("lost-parcel", "My parcel is lost", [
        ("When a parcel counts as lost", "If tracking has not changed for seven days within Europe, or 15 "
         "days elsewhere, the carrier opens an investigation."),
        ("What we do", "We reship the order or refund it, without waiting for the investigation to end.")],
     ["tracking hasn't moved for over a week", "my package never showed up"]),
    ("tracking", "Tracking your order", [
        ("Tracking link", "The shipping confirmation email contains a tracking link. You can also find it "
         "under Orders in your account."),
        ("No updates yet", "Tracking may show no movement for up to 24 hours after the label is created.")],
     ["where is my package right now", "how can I follow my delivery"]),
    ("delivery-times", "Delivery times and costs", [
        ("Standard delivery", "Standard delivery takes 2 to 4 working days within the EU and is free over 50 "
         "euros."),
        ("Express delivery", "Express delivery arrives the next working day when ordered before 2 pm, for "
         "9.90 euros.")],
     ["how long does shipping take", "how much is postage"]),
    ("change-address", "Changing the delivery address", [
        ("Before dispatch", "You can change the address under Orders until the parcel is dispatched."),
        ("After dispatch", "Once shipped, use the carrier's redirect option from the tracking page; some "
         "carriers charge for redirecting.")],
     ["I put the wrong street on my order", "can the parcel go to my office instead"]),
    ("cancel-order", "Cancelling an order", [
        ("Cancel before dispatch", "Orders can be cancelled from your account within one hour of purchase "
         "or until they are packed."),
        ("Already shipped", "If it has shipped, refuse the delivery or return it within 30 days for a "
         "refund.")],
     ["I ordered by mistake, can I stop it", "how do I cancel what I just bought"]),
    ("customs", "Customs duties and import taxes", [
        ("Outside the EU", "For deliveries outside the EU, duties and import VAT are charged by the "
         "destination country's customs and paid by the recipient."),
        ("United Kingdom", "For the UK we collect VAT at checkout on orders up to 135 pounds, so nothing is "
         "due on delivery.")],
     ["why did the courier ask me to pay extra fees", "will I be charged import tax"]),
    ("warranty", "Warranty coverage", [
        ("What is covered", "All appliances carry a two-year warranty against manufacturing defects from the "
         "date of delivery."),
        ("What is not covered", "Damage from limescale, drops, misuse or unauthorised repairs is not covered."),
        ("Extended warranty", "Registering your product extends the warranty to three years.")],
     ["is my machine still under guarantee", "what does the guarantee cover"]),
    ("warranty-claim", "Making a warranty claim", [
        ("Start a claim", "Open the claim form in your account, choose the product and describe the fault. "
         "Add a short video if you can."),
        ("Repair or replacement", "We collect the appliance by courier, repair it within ten working days, or "
         "replace it if repair is not possible.")],
     ["how do I get my broken machine repaired for free", "the warranty process"]),
    ("register-product", "Registering your product", [
        ("Why register", "Registration extends the warranty by one year and lets us tell you about safety "
         "notices."),
        ("How", "Enter the serial number from the label under the appliance in your account under Products.")],
     ["how do I get the extra year of warranty", "where do I enter my serial number"]),
    ("recall", "Safety notice: Swan-neck kettle lids (batch 2025-07)", [
        ("Affected units", "Kettles with serial numbers starting SK10-2507 may have a lid hinge that can "
         "crack when hot."),
        ("What to do", "Stop using the kettle and request a free replacement lid; no proof of purchase is "
         "needed.")],
     ["is there a problem with the kettle lid", "my kettle lid hinge cracked, is this known"]),
    ("price-match", "Price match promise", [
        ("How it works", "If you find the same product cheaper at an authorised retailer within 14 days of "
         "buying, we refund the difference."),
        ("Exclusions", "Marketplace sellers, clearance sales and bundle prices are excluded.")],
     ["I saw it cheaper elsewhere after buying", "do you match competitors' prices"]),
    ("payment-methods", "Accepted payment methods", [
        ("Cards and wallets", "We accept Visa, Mastercard, American Express, PayPal, Apple Pay and Google "
         "Pay."),
        ("Bank transfer", "Business customers can pay by bank transfer on 30-day terms after approval.")],
     ["can I pay with Amex", "do you take Apple Pay"]),
    ("payment-declined", "My payment was declined", [
        ("Common reasons", "Payments fail when the billing address does not match the card, the card has "
         "expired, or your bank's 3-D Secure check was not completed."),
        ("Try again", "Check the details, approve the payment in your banking app, or use another method. "
         "A failed payment is never charged.")],
     ["why does my card keep getting rejected", "checkout says transaction failed"]),
    ("double-charge", "I was charged twice", [
        ("Authorisation holds", "A failed attempt can leave a pending authorisation on your card. It is not a "
         "charge and disappears within 7 days."),
        ("Two real charges", "If two charges have settled, send us both transaction references and we refund "
         "the duplicate within one working day.")],
     ["my bank shows the same payment two times", "I see a duplicate transaction on my statement"]),
    ("invoice", "Getting an invoice with VAT", [
        ("Download", "Every order has a VAT invoice as a PDF under Orders, available once it ships."),
        ("Company details", "To add a company name and VAT number, enter them at checkout or ask us to "
         "reissue the invoice within 30 days.")],
     ["I need a receipt for my company", "where can I download the bill for my purchase"]),
    ("instalments", "Paying in instalments", [
        ("Pay in 3", "Orders over 30 euros can be split into three interest-free payments with PayPal Pay "
         "in 3 or Klarna."),
        ("Missed payments", "Instalments are managed by the provider; contact them about a missed payment.")],
     ["can I spread the cost over a few months", "is there a buy now pay later option"]),
    ("gift-cards", "Gift cards", [
        ("Buying", "Digital gift cards from 10 to 200 euros are emailed instantly; they never expire."),
        ("Redeeming", "Enter the 16-character code at checkout. The remaining balance stays on the card.")],
     ["how do I use a voucher I was given", "do gift vouchers expire"]),
    ("promo-codes", "Discount codes not working", [
        ("Check the conditions", "Codes have a minimum order value and an end date, and only one code can be "
         "used per order."),
        ("Sale items", "Most codes do not apply to items already on sale.")],
     ["my coupon is not accepted at checkout", "the discount code says invalid"]),
    ("student-discount", "Student and key worker discount", [
        ("Who qualifies", "Students and healthcare workers get 10% off after verifying with a university "
         "or work email."),
        ("How to verify", "Verification is done once through our partner and the discount applies "
         "automatically.")],
     ["do nurses get money off", "is there a discount for university students"]),
    ("currency", "Prices, currency and VAT", [
        ("Currency", "Prices are shown in euros; your card issuer converts other currencies at its own rate."),
        ("VAT", "All prices for EU customers include VAT at the rate of the delivery country.")],
     ["can I pay in dollars", "does the price include tax"]),
    ("password-reset", "Resetting your password", [
        ("Forgot password", "Choose Forgot password on the sign-in page and enter your email; the reset link "
         "is valid for one hour."),
        ("No email arrives", "Check spam, and make sure you use the address your account was created with.")],
     ["I can't remember my login", "the reset link never arrives"]),
    ("two-factor", "Two-step verification", [
        ("Turn it on", "In Account settings, Security, choose an authenticator app or text messages for "
         "your second step."),
        ("Lost phone", "Use one of your backup codes to sign in, then set up the new phone.")],
     ["I got a new phone and can't get the login code", "how do I add extra security to my account"]),
    ("change-email", "Changing your email address", [
        ("How", "Update the email in Account settings; we send a confirmation link to the new address."),
        ("Orders in progress", "Emails about orders already placed still go to the old address.")],
     ["I want to use a different email for my account", "update my contact email"]),
    ("delete-account", "Deleting your account and data", [
        ("Close the account", "Request deletion in Account settings, Privacy. We erase your data within 30 "
         "days, except invoices we must keep by law."),
        ("Download first", "You can download a copy of your data before closing the account.")],
     ["please remove all my personal information", "how do I close my account permanently"]),
    ("guest-checkout", "Ordering without an account", [
        ("Guest checkout", "You can order as a guest; tracking and invoices are sent by email."),
        ("Create an account later", "Sign up with the same email and your guest orders are attached.")],
     ["do I need to register to buy", "can I check out as a guest"]),
    ("newsletter", "Unsubscribing from emails", [
        ("Marketing emails", "Use the unsubscribe link at the bottom of any newsletter, or untick it in "
         "Account settings, Communication."),
        ("Order emails", "Emails about your orders are always sent and cannot be turned off.")],
     ["stop sending me promotional mails", "too many newsletters"]),
    ("sub-start", "How the coffee subscription works", [
        ("Plans", "Choose a blend, a grind and a delivery interval of one, two or four weeks. Each bag is "
         "roasted within 48 hours of shipping."),
        ("Billing", "You are charged on the day each delivery is prepared; shipping is free.")],
     ["how do regular coffee deliveries work", "tell me about the monthly beans plan"]),
    ("sub-pause", "Pausing or skipping a subscription delivery", [
        ("Skip one delivery", "Skip the next delivery from Subscriptions up to two days before it is "
         "prepared."),
        ("Pause", "Pause for up to three months, for example while you travel.")],
     ["I'm going on holiday, can I stop the beans for a while", "skip next month's bag"]),
    ("sub-cancel", "Cancelling a subscription", [
        ("Cancel anytime", "Cancel from Subscriptions; there is no minimum term and no fee."),
        ("Deliveries in progress", "A delivery already being prepared still ships and is charged.")],
     ["I want to end my coffee plan", "stop my recurring order for good"]),
    ("sub-change", "Changing blend, grind or frequency", [
        ("What you can change", "Change the blend, the grind size, the number of bags or the interval at "
         "any time before the next delivery is prepared."),
        ("Grind sizes", "Choose whole bean, espresso, filter, French press or cold brew grind.")],
     ["can I get my subscription beans ground coarser", "switch my plan to a different roast"]),
    ("sub-payment", "Subscription payment failed", [
        ("Retry", "When a subscription payment fails we retry after three days and email you; update your "
         "card under Payment methods."),
        ("Paused after failures", "After two failed retries the subscription pauses until a payment "
         "succeeds.")],
     ["my plan was paused because the card expired", "subscription charge didn't go through"]),
    ("app-account", "Signing in to the Northwind app", [
        ("Same account", "The app uses the same email and password as the website."),
        ("Sign-in loops", "If the app keeps asking you to sign in, update it and clear its cache.")],
     ["the mobile app keeps logging me out", "which password do I use in the phone app"]),
    ("app-recipes", "Brew recipes in the app", [
        ("Guided recipes", "The app has step-by-step recipes for pour-over, AeroPress, French press and "
         "espresso, with timers."),
        ("Your own recipes", "Save your own ratios and share them with a link.")],
     ["where can I find brewing guides", "can I save my favourite coffee ratio"]),
    ("firmware", "Updating device firmware", [
        ("Over the air", "Connected appliances update from the app under Devices, Firmware; keep the device "
         "plugged in during the update."),
        ("Failed update", "If an update stops halfway, restart the device; it returns to the previous "
         "version and you can try again.")],
     ["how do I install the latest software on my machine", "update got stuck at 60 percent"]),
    ("wifi", "Connecting an appliance to Wi-Fi", [
        ("Supported networks", "Appliances connect to 2.4 GHz Wi-Fi networks only; 5 GHz networks are not "
         "supported."),
        ("Router settings", "Networks with a captive portal, such as hotels, cannot be used.")],
     ["the machine doesn't see my wireless network", "does it work with 5 GHz"]),
    ("wholesale", "Wholesale and office orders", [
        ("Business accounts", "Cafes and offices can open a business account for volume pricing, invoices on "
         "30-day terms and a dedicated contact."),
        ("Minimum order", "Wholesale orders start at 20 kilograms of coffee or 500 euros of equipment.")],
     ["we're a cafe and want to buy in bulk", "pricing for large quantities"]),
    ("corporate-gifts", "Corporate gifts", [
        ("Custom boxes", "We assemble gift boxes with your logo for 25 or more recipients."),
        ("Delivery to many addresses", "Upload a spreadsheet of addresses and we ship to each recipient.")],
     ["Christmas presents for my whole team", "branded gifts for our clients"]),
    ("beans-freshness", "Coffee freshness and storage", [
        ("Roast date", "Every bag shows its roast date. Coffee tastes best 5 to 30 days after roasting."),
        ("Storing beans", "Keep beans in the resealable bag, away from light and heat. Do not refrigerate.")],
     ["how long do beans stay good", "should I keep coffee in the fridge"]),
    ("grind-size", "Choosing a grind size", [
        ("By method", "Use fine for espresso, medium for drip and pour-over, coarse for French press and "
         "cold brew."),
        ("Adjusting", "If coffee tastes bitter grind coarser; if sour, grind finer.")],
     ["my coffee tastes sour, what setting", "how fine for a moka pot"]),
    ("allergens", "Allergens and ingredients", [
        ("Coffee", "Our coffees contain only coffee beans and are roasted in a facility that also handles "
         "nuts in flavoured blends."),
        ("Syrups", "Flavoured syrups list their ingredients on each product page.")],
     ["is there nut contamination in the beans", "ingredients of the hazelnut syrup"]),
    ("decaf", "How our decaf is made", [
        ("Swiss Water process", "Our decaf uses the Swiss Water process: no chemicals, 99.9% caffeine-free."),
        ("Taste", "Decaf beans roast slightly darker and are sweeter.")],
     ["is the decaffeinated coffee chemical free", "how much caffeine is left in decaf"]),
    ("sustainability", "Packaging and recycling", [
        ("Bags", "Coffee bags are compostable at industrial facilities; the valve goes in general waste."),
        ("Boxes", "Shipping boxes are recycled cardboard and can go with paper recycling.")],
     ["can I compost the coffee bags", "is your packaging eco friendly"]),
    ("privacy", "Privacy and cookies", [
        ("What we collect", "We store your orders, addresses and support conversations to provide the "
         "service, and analytics only with your consent."),
        ("Your rights", "You can access, correct or erase your data at any time from Account settings.")],
     ["what do you do with my data", "how do I refuse tracking cookies"]),
    ("contact", "Contacting customer support", [
        ("Chat and email", "Chat is open every day from 8 am to 10 pm; email replies within one working day."),
        ("Phone", "Phone support is available Monday to Friday, 9 am to 5 pm, on +31 20 555 0100.")],
     ["what is your phone number", "when is the help line open"]),
    ("store-visits", "Our showroom in Amsterdam", [
        ("Opening hours", "The showroom at Prinsengracht 210 is open Thursday to Sunday, 10 am to 6 pm."),
        ("Try before you buy", "You can try every machine; orders placed there ship the same day.")],
     ["can I see the machines in person", "do you have a physical shop"]),
    ("careers", "Working at Northwind", [
        ("Open positions", "Vacancies in roasting, logistics and support are listed on our careers page."),
        ("Internships", "We offer paid six-month internships each spring.")],
     ["are you hiring", "job openings"]),
    ("trade-in", "Trade-in programme for old machines", [
        ("How it works", "Send us your old espresso machine or grinder, any brand, and get a voucher worth "
         "up to 150 euros towards a new one."),
        ("Recycling", "Machines we cannot refurbish are recycled responsibly.")],
     ["what can I do with my old coffee machine", "do you give credit for used appliances"]),
    ("rental", "Renting an espresso machine for events", [
        ("Event rental", "Rent an Aurora machine with grinder and beans for weddings and conferences, from "
         "one to seven days."),
        ("Deposit", "A refundable deposit of 300 euros is held on your card.")],
     ["can we borrow a coffee machine for our wedding", "hire equipment for a conference"]),
    ("water-filter", "Using a water filter", [
        ("Why filter", "Filtered water reduces limescale and improves taste."),
        ("Changing cartridges", "Replace the filter cartridge every two months or after 100 litres.")],
     ["how often do I change the filter cartridge", "does soft water help my machine"]),
    ("milk-alternatives", "Frothing oat and plant milks", [
        ("Best results", "Barista editions of oat and soy milk foam best; almond milk forms larger bubbles."),
        ("Temperature", "Plant milks scorch easily: stop at 60 degrees.")],
     ["why won't my almond milk foam", "best vegan milk for latte art"]),
    ("voltage", "Using appliances abroad", [
        ("Voltage", "Our appliances are built for 220-240 volts. Using them on 110 volts needs a step-up "
         "transformer, not just a plug adapter."),
        ("Warranty abroad", "The warranty applies worldwide, but repairs are done in the EU.")],
     ["will the kettle work in the USA", "can I take my machine to America"]),
    ("accessibility", "Accessibility", [
        ("Website", "Our website follows WCAG 2.1 AA; let us know about any barrier you meet."),
        ("Large-print manuals", "Large-print and audio manuals are available for every appliance.")],
     ["do you have manuals for people with poor eyesight", "screen reader support"]),
    ("reviews", "Writing a product review", [
        ("Who can review", "Anyone who bought the product can review it from Orders after delivery."),
        ("Moderation", "Reviews are checked for abuse only; negative reviews are published too.")],
     ["how can I leave feedback on a product", "my review doesn't show up"]),
    ("referral", "Refer a friend", [
        ("How it works", "Share your link: your friend gets 15% off the first order and you get a 10 euro "
         "credit when it ships."),
        ("Limits", "Credits can be earned for up to 20 friends a year.")],
     ["do I get something for recommending you", "friend discount link"]),
    ("loyalty", "Loyalty points", [
        ("Earning", "Earn one point per euro spent; 100 points are worth 5 euros."),
        ("Expiry", "Points expire after 12 months without an order.")],
     ["how do reward points work", "my points disappeared"]),
    ("preorder", "Pre-orders and back-in-stock alerts", [
        ("Pre-orders", "Pre-ordered items are charged when they ship; the expected date is on the product "
         "page."),
        ("Alerts", "Choose Notify me on a sold-out product to get an email when it is back.")],
     ["when will the sold out grinder be available again", "can I reserve a product that isn't out yet"]),
]

# Destinations: (key, country, days, price, carrier, note)
DESTINATIONS = [
    ("nl", "the Netherlands", "1-2", "free over 30 euros", "PostNL", "Evening delivery is available in Amsterdam, "
     "Rotterdam and Utrecht."),
    ("de", "Germany", "2-3", "4.95 euros", "DHL", "Parcels can be sent to a DHL Packstation: enter its number as the "
     "address."),
    ("fr", "France", "2-4", "5.95 euros", "Colissimo", "You can choose delivery to a relay point at checkout."),
    ("be", "Belgium", "1-3", "4.95 euros", "bpost", "Saturday delivery is not available in Belgium."),
    ("es", "Spain", "3-5", "6.95 euros", "SEUR", "The Canary Islands are outside the EU VAT area and pay import "
     "duties."),
    ("it", "Italy", "3-5", "6.95 euros", "BRT", "Deliveries to Sicily and Sardinia take one extra day."),
    ("uk", "the United Kingdom", "3-6", "9.95 pounds", "Royal Mail", "VAT is collected at checkout; no fees on "
     "delivery."),
    ("ch", "Switzerland", "3-6", "14.95 francs", "Swiss Post", "Swiss import VAT of 8.1% is charged on delivery."),
    ("no", "Norway", "4-7", "14.95 euros", "Posten", "Norwegian VAT is collected by Posten before delivery."),
    ("us", "the United States", "5-8", "24.95 dollars", "UPS", "Appliances are built for 230 volts and need a "
     "transformer in the US."),
    ("ca", "Canada", "6-10", "29.95 dollars", "UPS", "Duties are charged by Canada Border Services on delivery."),
    ("at", "Austria", "3-4", "5.95 euros", "Austrian Post", "Parcels can be collected at any post office "
     "branch within seven days."),
    ("dk", "Denmark", "3-5", "7.95 euros", "GLS", "GLS leaves parcels at a ParcelShop if you are not home."),
    ("se", "Sweden", "3-6", "7.95 euros", "PostNord", "Northern Sweden can take two extra days in winter."),
    ("pl", "Poland", "3-5", "6.95 euros", "InPost", "Choose an InPost parcel locker at checkout."),
    ("ie", "Ireland", "3-5", "7.95 euros", "An Post", "Eircodes speed up delivery; add yours to the address."),
    ("pt", "Portugal", "4-6", "7.95 euros", "CTT", "The Azores and Madeira take three extra days."),
    ("fi", "Finland", "4-6", "8.95 euros", "Posti", "Posti sends a text message when the parcel reaches a pick-up "
     "point."),
    ("jp", "Japan", "7-14", "39.95 dollars", "FedEx", "Japanese customs may ask for the recipient's phone number."),
    ("au", "Australia", "7-12", "34.95 dollars", "DHL Express", "Coffee beans must be declared for biosecurity "
     "and may be inspected."),
]
SHIPPING_ASKS = [
    "how long does it take to ship to {short}", "do you deliver to {short} and what does it cost",
    "shipping costs {short}",
]
COUNTRY_SHORT = {"nl": "Holland", "de": "Germany", "fr": "France", "be": "Belgium", "es": "Spain", "it": "Italy",
                 "uk": "the UK", "at": "Austria", "dk": "Denmark",
                 "se": "Sweden", "pl": "Poland", "ie": "Ireland", "pt": "Portugal", "fi": "Finland",
                 "jp": "Japan", "ch": "Switzerland", "no": "Norway", "us": "the US", "ca": "Canada",
                 "au": "Australia"}


def _fill(text: str, product: Product, nick: str | None = None) -> str:
    return text.format(name=product.name, model=product.model, part=product.part, code=product.code,
                       nick=nick or product.nicknames[0])


def documents(seed: int = 22) -> list[Doc]:
    """All documents of the set, in a fixed order."""
    rng = random.Random(seed)
    docs: list[Doc] = []
    for product in PRODUCTS:
        intro = (f"This article covers the {product.name} (model {product.model}). "
                 f"Find the model number on the label underneath the appliance.")
        for family, specs in (("fix", SYMPTOMS), ("care", CARE)):
            for symptom, spec in specs.items():
                if symptom == "descale" and product.key in DRY_PRODUCTS:
                    continue
                parts = [f"## {_fill(h, product)}\n\n{_fill(t, product)}" for h, t in spec["sections"]]
                if rng.random() < 0.5:
                    parts = parts[:1] + parts[1:][::-1]
                body = "\n\n".join([intro, *parts, FOOTER])
                asks = [_fill(a, product, rng.choice(product.nicknames)) for a in spec["asks"]]
                docs.append(Doc(f"{family}-{symptom}-{product.key}", _fill(spec["title"], product), body, asks))
    for key, title, sections, asks in ARTICLES:
        body = "\n\n".join([*(f"## {h}\n\n{t}" for h, t in sections), FOOTER])
        docs.append(Doc(key, title, body, list(asks)))
    for key, country, days, price, carrier, note in DESTINATIONS:
        body = "\n\n".join([
            f"## Delivery time\n\nOrders to {country} arrive in {days} working days with {carrier}.",
            f"## Cost\n\nShipping to {country} costs {price}.",
            f"## Good to know\n\n{note}",
            FOOTER,
        ])
        asks = [a.format(short=COUNTRY_SHORT[key]) for a in SHIPPING_ASKS]
        docs.append(Doc(f"ship-{key}", f"Shipping to {country}", body, asks))
    return docs


OPENERS = [
    "Hi there.", "Hello, hope you're well.", "Good morning!", "Hey, quick one.", "Hi, I've been a customer for years.",
    "Evening. Sorry to bother you so late.", "Hello support team,", "Hi! First time writing to you.",
]
DETAILS = [
    "My order number is NW-{order} and I paid {amount} euros for it on {date}.",
    "You can reach me on {phone} if that's easier.",
    "I bought it on {date} for {amount} euros, order #{order}.",
    "My husband ordered it with his card, the total was {amount} EUR.",
    "We just moved flat so everything is still in boxes.",
    "The weather here has been awful so I've been drinking a lot more coffee lately.",
    "My daughter set it up for me, I'm not great with technology.",
    "I'm writing from my phone, sorry for typos.",
    "It was a birthday present for my brother in Lyon.",
    "I already checked your FAQ page but couldn't find it.",
    "My reference from the last chat was case {order}.",
    "Our office has about {small} people drinking coffee every day.",
    "Call me at {phone} after 6pm please.",
    "The invoice says {amount} euros including shipping.",
    "I have two cats and they knocked the box over once, but that's not related.",
]
CLOSERS = [
    "Thanks in advance!", "Please let me know what to do.", "Cheers.", "Looking forward to your reply.",
    "Thank you so much for your help.", "Can you sort this out?", "Any advice appreciated.", "",
]
ASK_FRAMES = [
    "{ask}?", "So basically, {ask}.", "My question is: {ask}?", "Anyway, {ask}, what should I do?",
    "I'd like to know {ask}.", "The thing is {ask}.",
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def _scenario(ask: str, rng: random.Random) -> str:
    values = {
        "order": rng.randrange(10000, 99999),
        "amount": f"{rng.randrange(12, 900)}.{rng.randrange(0, 99):02d}",
        "date": f"{rng.randrange(1, 28)} {rng.choice(MONTHS)}",
        "phone": rng.choice(["+44 7700 9{:05d}", "06-{:08d}", "+31 6 {:08d}", "(555) 01{:05d}"]).format(
            rng.randrange(0, 99999)),
        "small": rng.randrange(5, 60),
    }
    details = [d.format(**values) for d in rng.sample(DETAILS, rng.randrange(2, 4))]
    core = rng.choice(ASK_FRAMES).format(ask=ask)
    sentences = [rng.choice(OPENERS), *details]
    sentences.insert(rng.randrange(1, len(sentences) + 1), core[0].upper() + core[1:])
    closer = rng.choice(CLOSERS)
    if closer:
        sentences.append(closer)
    return " ".join(sentences)


def _typed_title(title: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.3:
        return title.lower()
    if roll < 0.5:
        return "".join(c for c in title if c.isalnum() or c.isspace()).strip()
    return title


def questions(docs: list[Doc], seed: int = 22) -> list[Question]:
    """Every document's short questions, one long scenario around one of them, and
    its title; a sample of each kind so the set stays quick to run."""
    rng = random.Random(seed)
    out: list[Question] = []
    for doc in docs:
        asks = list(doc.questions)
        for ask in rng.sample(asks, min(2, len(asks))):
            out.append(Question("short", ask, (doc.key,)))
        out.append(Question("long", _scenario(rng.choice(asks), rng), (doc.key,)))
        out.append(Question("title", _typed_title(doc.title, rng), (doc.key,)))
    # Questions that more than one document answers.
    extra = [
        ("short", "I returned the grinder, when do I get my money back", ("refund-timing", "returns")),
        ("short", "kettle lid hinge broke, do I get a new one free", ("recall", "warranty-claim")),
        ("short", "card charged twice for one coffee subscription delivery", ("double-charge", "sub-payment")),
    ]
    out += [Question(kind, text, labels) for kind, text, labels in extra]
    return out


def split(items: list[Question], seed: int = 22) -> tuple[list[Question], list[Question]]:
    """(tuning, held-out): half of each kind, chosen at random with `seed`."""
    rng = random.Random(seed)
    tuning: list[Question] = []
    held: list[Question] = []
    for kind in ("short", "long", "title"):
        of_kind = [q for q in items if q.kind == kind]
        rng.shuffle(of_kind)
        half = len(of_kind) // 2
        tuning += of_kind[:half]
        held += of_kind[half:]
    return tuning, held
