"""Word pools the demo generator draws from (names per script, companies, places, products).

Each person pool holds ``(first, last, first_ascii, last_ascii)`` so an email can be derived from any name,
including Cyrillic, CJK and Arabic ones; the generator counts names per script, so keep each pool in its
script (plain pool: ASCII only; the others: at least one non-ASCII letter in every name).
"""

from __future__ import annotations

PLAIN_FIRST = (
    "James", "Mary", "John", "Linda", "Robert", "Susan", "Michael", "Karen", "David", "Lisa", "Daniel", "Emma",
    "Thomas", "Olivia", "Paul", "Sophie", "Mark", "Laura", "Peter", "Anna", "Oliver", "Grace", "Lucas", "Mia",
)
PLAIN_LAST = (
    "Smith", "Johnson", "Brown", "Taylor", "Miller", "Wilson", "Moore", "Clark", "Walker", "Young", "King",
    "Wright", "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts", "Turner", "Parker",
)

# (first, last, first_ascii, last_ascii): Latin with diacritics (ü, é, ñ, ø, ß…)
LATIN_DIACRITIC = (
    ("Jürgen", "Müller", "juergen", "mueller"),
    ("Zoë", "Lefèvre", "zoe", "lefevre"),
    ("José", "Muñoz", "jose", "munoz"),
    ("Renée", "Dubois", "renee", "dubois"),
    ("Björn", "Sørensen", "bjorn", "sorensen"),
    ("Ines", "Peña", "ines", "pena"),
    ("Hélène", "Gauß", "helene", "gauss"),
    ("Łukasz", "Wójcik", "lukasz", "wojcik"),
    ("Ana", "Conceição", "ana", "conceicao"),
    ("François", "Ébert", "francois", "ebert"),
)
CYRILLIC = (
    ("Иван", "Петров", "ivan", "petrov"),
    ("Ольга", "Смирнова", "olga", "smirnova"),
    ("Дмитрий", "Иванов", "dmitry", "ivanov"),
    ("Наталья", "Кузнецова", "natalya", "kuznetsova"),
    ("Сергей", "Попов", "sergey", "popov"),
    ("Анна", "Соколова", "anna", "sokolova"),
)
CJK = (
    ("太郎", "田中", "taro", "tanaka"),
    ("花子", "山田", "hanako", "yamada"),
    ("伟", "王", "wei", "wang"),
    ("秀英", "李", "xiuying", "li"),
    ("민준", "김", "minjun", "kim"),
    ("芳", "张", "fang", "zhang"),
)
ARABIC = (
    ("محمد", "العلي", "mohammed", "alali"),
    ("فاطمة", "حسن", "fatima", "hassan"),
    ("أحمد", "الخطيب", "ahmed", "alkhatib"),
    ("ليلى", "منصور", "layla", "mansour"),
    ("يوسف", "عباس", "yousef", "abbas"),
)
SCRIPT_POOLS = {"latin_diacritic": LATIN_DIACRITIC, "cyrillic": CYRILLIC, "cjk": CJK, "arabic": ARABIC}

EMAIL_DOMAINS = ("example.com", "mail.example", "example.org", "inbox.example", "example.net")
INVALID_EMAILS = (
    "{local}@",
    "{local}.example.com",
    "{local}@@example.com",
    "{local}@example",
    "{local} @example.com",
    "@example.com",
)

COMPANY_STEMS = (
    "Nordwind", "Alpine", "Harbor", "Summit", "Bluebird", "Redwood", "Ironbridge", "Silverline", "Oakfield",
    "Brightwater", "Westmark", "Eastgate", "Northstar", "Crescent", "Highland", "Riverside",
)
COMPANY_SUFFIXES = ("GmbH", "Ltd", "Inc.", "S.L.", "SARL", "B.V.", "AG", "LLC")
UNICODE_COMPANIES = (
    "Müller & Söhne GmbH",
    "Société Générale de Café SARL",
    "Compañía Española de Té S.L.",
    "ООО «Ромашка»",
    "株式会社山田商事",
    "北京长城贸易有限公司",
    "شركة الأمل للتجارة",
    "Øresund Handel ApS",
)
PERSON_FOR_PRIVATE_BP = (("Klaus", "Becker"), ("Émile", "Rousseau"), ("Maria", "García"), ("Tom", "Hughes"))

# store code -> [(country, state pool, city pool)]
PLACES = {
    "EU": (
        ("DE", ("BE", "BY", "HH"), ("Berlin", "München", "Hamburg", "Köln")),
        ("FR", ("", "", ""), ("Paris", "Lyon", "Marseille")),
        ("ES", ("M", "B", ""), ("Madrid", "Barcelona", "Sevilla")),
        ("AT", ("W", "", ""), ("Wien", "Graz")),
        ("NL", ("", "", ""), ("Amsterdam", "Utrecht")),
    ),
    "US": (("US", ("NY", "CA", "TX", "IL", "WA"), ("New York", "San Francisco", "Austin", "Chicago", "Seattle")),),
    "UK": (("GB", ("", "", ""), ("London", "Manchester", "Edinburgh", "Bristol")),),
}
STREETS = (
    "Hauptstraße", "Rue de la Paix", "Calle Mayor", "Main Street", "High Street", "Oak Avenue", "Kerkstraat",
    "Mariahilfer Straße", "Baker Street", "Elm Road", "Schillerstraße", "Avenida de América",
)

PRODUCT_ADJECTIVES = (
    "Classic", "Organic", "Premium", "Trail", "Urban", "Vintage", "Everyday", "Merino", "Waterproof", "Café",
)
PRODUCT_NOUNS = (
    "T-Shirt", "Hoodie", "Running Shoe", "Backpack", "Mug", "Water Bottle", "Jacket", "Cap", "Scarf", "Socks",
    "Notebook", "Desk Lamp", "Headphones", "Chair", "Tea Set", "Umbrella",
)
COLORS = ("Red", "Blue", "Black", "White", "Green")
SIZES = ("S", "M", "L", "XL")
