"""Generates Lathe's demo data (stdlib only, deterministic): run `python3 generate.py` here.

customers.csv  a synthetic subscription-churn table with realistic structure and some nulls
shapes/        small PNG images of circles, squares and triangles, one folder per class
reviews.txt    short product reviews, one per line
"""
import math, random, struct, zlib, datetime, os

rng = random.Random(42)

# --- customers.csv -----------------------------------------------------------------------
regions = ["north", "south", "east", "west"]
plans = [("basic", 9.99), ("plus", 19.99), ("pro", 49.99)]
rows = ["customer_id,signup_date,region,plan,age,monthly_spend,tenure_months,support_tickets,satisfaction,churned"]
start = datetime.date(2021, 1, 1)
for i in range(2000):
    plan, price = rng.choices(plans, weights=[5, 3, 2])[0]
    tenure = max(1, int(rng.expovariate(1 / 18)))
    tickets = min(12, int(rng.expovariate(1 / 1.5)))
    satisfaction = max(1, min(5, round(rng.gauss(4 - 0.35 * tickets, 0.8))))
    spend = round(price * (1 + rng.uniform(-0.1, 0.6)), 2)
    age = "" if rng.random() < 0.04 else str(max(18, min(85, int(rng.gauss(41, 12)))))
    p_churn = 1 / (1 + math.exp(-(-1.2 + 0.45 * tickets - 0.6 * (satisfaction - 3) - 0.03 * tenure)))
    churned = "true" if rng.random() < p_churn else "false"
    signup = start + datetime.timedelta(days=rng.randrange(0, 1400))
    rows.append(f"C{10000 + i},{signup.isoformat()},{rng.choice(regions)},{plan},{age},{spend},{tenure},{tickets},{satisfaction},{churned}")
with open("customers.csv", "w") as f:
    f.write("\n".join(rows) + "\n")

# --- shapes/ -------------------------------------------------------------------------------
def png(width, height, pixels):
    raw = b"".join(b"\x00" + bytes(pixels[y * width * 3:(y + 1) * width * 3]) for y in range(height))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))

def inside(shape, x, y, cx, cy, r):
    if shape == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    if shape == "square":
        return abs(x - cx) <= r * 0.85 and abs(y - cy) <= r * 0.85
    # triangle pointing up
    top, bottom = cy - r, cy + r * 0.8
    if not top <= y <= bottom:
        return False
    half = (y - top) / (bottom - top) * r
    return abs(x - cx) <= half

size = 96
for shape in ["circle", "square", "triangle"]:
    os.makedirs(f"shapes/{shape}", exist_ok=True)
    for n in range(1, 9):
        bg = [rng.randrange(200, 256) for _ in range(3)]
        fg = [rng.randrange(0, 160) for _ in range(3)]
        r = rng.uniform(18, 36)
        cx, cy = rng.uniform(r + 4, size - r - 4), rng.uniform(r + 4, size - r - 4)
        pixels = []
        for y in range(size):
            for x in range(size):
                color = fg if inside(shape, x + 0.5, y + 0.5, cx, cy, r) else bg
                pixels.extend(max(0, min(255, c + rng.randrange(-6, 7))) for c in color)
        with open(f"shapes/{shape}/{shape}-{n:02}.png", "wb") as f:
            f.write(png(size, size, pixels))

# --- reviews.txt ---------------------------------------------------------------------------
openers = ["Honestly,", "After two weeks,", "For the price,", "Overall,", "To be fair,", "Sadly,", ""]
subjects = ["the battery", "the screen", "the build quality", "the delivery", "customer support",
            "the setup", "the sound", "the app", "the fit", "the packaging"]
good = ["is excellent", "works exactly as described", "exceeded my expectations", "is solid",
        "was quick and painless", "feels premium"]
bad = ["stopped working after a week", "is disappointing", "was late and damaged", "feels cheap",
       "never answered my emails", "drains far too fast"]
closers = ["Would buy again.", "Not recommended.", "Five stars.", "Returning it.", "Good value.",
           "Meh.", "My kids love it.", ""]
lines = set()
while len(lines) < 150:
    verdict = rng.choice(good if rng.random() < 0.6 else bad)
    line = " ".join(p for p in [rng.choice(openers), rng.choice(subjects), verdict + ".", rng.choice(closers)] if p)
    lines.add(line[0].upper() + line[1:])
with open("reviews.txt", "w") as f:
    f.write("\n".join(sorted(lines)) + "\n")
