"""Static data of the demo brand 禾源良品: products, people's names, cities, staff and the
phrases customers use. Pure data; the generator draws from it with numpy."""

from __future__ import annotations

from dataclasses import dataclass

BRAND = "禾源良品"
EXTERNAL_ID_PREFIX = "HY"


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: float
    # Days one unit lasts a regular user; repurchase rhythms are built around it.
    cycle_days: int
    category: str
    # Relative chance that a new customer's main product is this one.
    weight: float


PRODUCTS: tuple[Product, ...] = (
    Product("HY-OAT-01", "有机高纤燕麦片 1kg 月享装", 59.0, 30, "oats", 16),
    Product("HY-OAT-02", "即食燕麦杯 12 杯装", 69.0, 20, "oats", 8),
    Product("HY-NUT-01", "每日坚果 30 袋礼包", 129.0, 30, "nuts", 14),
    Product("HY-NUT-02", "原味巴旦木 500g", 79.0, 45, "nuts", 5),
    Product("HY-PRO-01", "益生菌冻干粉 30 条", 199.0, 60, "probiotics", 10),
    Product("HY-WHEY-01", "乳清蛋白粉 900g 香草味", 299.0, 45, "protein", 9),
    Product("HY-MEAL-01", "代餐奶昔 14 袋装", 159.0, 21, "meal", 9),
    Product("HY-COL-01", "胶原蛋白肽饮 10 瓶装", 239.0, 30, "collagen", 8),
    Product("HY-SNK-01", "低糖全麦消化饼干", 39.0, 15, "snacks", 9),
    Product("HY-SNK-02", "0 蔗糖黑巧克力 6 盒装", 49.0, 20, "snacks", 6),
    Product("HY-CHIA-01", "有机奇亚籽 400g", 45.0, 40, "seeds", 4),
    Product("HY-GIFT-01", "禾源新春年货礼盒", 368.0, 365, "gift", 1),
    Product("HY-GIFT-02", "中秋坚果臻选礼盒", 298.0, 365, "gift", 1),
)
# Bundles of the catalogue: (sku, name, price, components as (sku, quantity)). A bundle has
# no cycle of its own; the catalogue sums its components' (siyu.catalog).
BUNDLES: tuple[tuple[str, str, float, tuple[tuple[str, int], ...]], ...] = (
    ("HY-BOX-01", "燕麦坚果早餐礼盒（燕麦片 ×2 + 每日坚果）", 228.0,
     (("HY-OAT-01", 2), ("HY-NUT-01", 1))),
    ("HY-BOX-02", "健身蛋白代餐组合装（蛋白粉 + 代餐奶昔 ×2）", 589.0,
     (("HY-WHEY-01", 1), ("HY-MEAL-01", 2))),
    ("HY-BOX-03", "益生菌季度装 3 盒", 549.0, (("HY-PRO-01", 3),)),
)


def catalogue_records() -> list[dict[str, object]]:
    """The demo brand's catalogue as `siyu import products` rows: every product with its
    consumption cycle, and the bundles."""
    rows: list[dict[str, object]] = [
        {"sku": p.sku, "name": p.name, "category": p.category, "price": p.price,
         "cycle_days": p.cycle_days} for p in PRODUCTS]
    rows += [{"sku": sku, "name": name, "category": "bundle", "price": price,
              "bundle_of": [{"sku": part, "quantity": qty} for part, qty in parts]}
             for sku, name, price, parts in BUNDLES]
    return rows


SKU_INDEX: dict[str, int] = {p.sku: i for i, p in enumerate(PRODUCTS)}
SPRING_GIFT = SKU_INDEX["HY-GIFT-01"]
AUTUMN_GIFT = SKU_INDEX["HY-GIFT-02"]

# Acquisition channels with what they mean for a customer's value: share of new customers,
# mean dropout probability after each purchase, purchase-rate multiplier, chance of never
# buying (a lead that only added an advisor or watched a live stream).
ACQUISITION_CHANNELS: tuple[str, ...] = ("小程序", "企业微信", "App", "门店", "直播", "朋友推荐")
CHANNEL_SHARE: tuple[float, ...] = (0.36, 0.18, 0.10, 0.08, 0.16, 0.12)
CHANNEL_DROPOUT: tuple[float, ...] = (0.30, 0.22, 0.24, 0.20, 0.42, 0.13)
CHANNEL_RATE: tuple[float, ...] = (1.0, 1.1, 1.15, 1.05, 0.8, 1.3)
CHANNEL_NEVER_BUYS: tuple[float, ...] = (0.04, 0.30, 0.06, 0.05, 0.22, 0.08)
REFERRAL_CHANNEL = ACQUISITION_CHANNELS.index("朋友推荐")
WECOM_CHANNEL = ACQUISITION_CHANNELS.index("企业微信")
STORE_CHANNEL = ACQUISITION_CHANNELS.index("门店")
APP_CHANNEL = ACQUISITION_CHANNELS.index("App")
LIVE_CHANNEL = ACQUISITION_CHANNELS.index("直播")

# Channel codes on orders and events.
ORDER_CHANNELS: tuple[str, ...] = ("miniprogram", "app", "wecom", "store", "livestream")

TIERS: tuple[tuple[float, str], ...] = (
    (6000.0, "黑金"),
    (2500.0, "金卡"),
    (800.0, "银卡"),
    (0.0, "普通会员"),
)

# Ordered by frequency: the first surnames are far more common than the last.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾"
    "毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN_FEMALE = "婷静丽敏燕娟霞芳娜秀玲颖琳雪慧佳欣怡悦萱涵彤晨瑶璐倩雯梦露薇妍蕾诗琪晓"
GIVEN_MALE = "伟强磊军勇杰涛斌超明辉刚鹏飞浩宇轩博文俊凯峰建华志鑫睿哲晨阳昊天泽然嘉"
GIVEN_NEUTRAL = "子一思雨嘉欣可安宁心若晓亦梓乐君"

# City and relative weight; tiers are implicit in the weights (一线, 新一线, 二线, 三线及以下).
CITIES: tuple[tuple[str, float], ...] = (
    ("上海", 9.0), ("北京", 8.5), ("深圳", 7.0), ("广州", 6.5),
    ("成都", 4.5), ("杭州", 4.5), ("重庆", 3.5), ("武汉", 3.5), ("西安", 3.0), ("苏州", 3.0),
    ("天津", 2.5), ("南京", 3.0), ("长沙", 2.5), ("郑州", 2.2), ("东莞", 1.8), ("青岛", 2.0),
    ("沈阳", 1.6), ("宁波", 1.8), ("昆明", 1.5),
    ("无锡", 1.2), ("厦门", 1.3), ("福州", 1.1), ("合肥", 1.3), ("济南", 1.2), ("大连", 1.0),
    ("哈尔滨", 0.9), ("长春", 0.8), ("佛山", 1.1), ("南昌", 0.8), ("南宁", 0.8), ("贵阳", 0.7),
    ("石家庄", 0.8), ("太原", 0.6), ("温州", 0.8), ("珠海", 0.6), ("常州", 0.7), ("嘉兴", 0.6),
    ("绍兴", 0.5), ("烟台", 0.5), ("泉州", 0.6), ("惠州", 0.5), ("金华", 0.5), ("海口", 0.4),
    ("兰州", 0.4), ("乌鲁木齐", 0.3), ("洛阳", 0.3), ("扬州", 0.4), ("芜湖", 0.3), ("赣州", 0.3),
    ("桂林", 0.2), ("大理", 0.15), ("三亚", 0.2), ("柳州", 0.2), ("宜昌", 0.2), ("湛江", 0.2),
)

# Mainland mobile prefixes (all valid for libphonenumber).
PHONE_PREFIXES: tuple[str, ...] = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
    "153", "155", "156", "157", "158", "159", "166", "173", "175", "176", "177", "178",
    "180", "181", "182", "183", "185", "186", "187", "188", "189", "191", "198", "199",
)
EMAIL_DOMAINS: tuple[str, ...] = ("qq.com", "163.com", "126.com", "foxmail.com", "outlook.com",
                                  "gmail.com", "sina.com")

# Staff: (username, display name, role). Advisors (agent) serve customers on WeCom.
STAFF: tuple[tuple[str, str, str], ...] = (
    ("admin", "系统管理员", "admin"),
    ("operator", "运营 · 周敏", "operator"),
    ("analyst", "分析师 · 郑宇", "analyst"),
)
ADVISORS: tuple[str, ...] = (
    "陈静", "刘洋", "王芳", "李娜娜", "张晓峰", "赵雪", "孙悦", "周婷", "吴昊", "郑佳",
    "黄丽", "林晨", "何欣", "高远", "罗敏", "梁爽", "宋雨", "唐糖", "许诺", "韩梅",
)

GROUPS: tuple[str, ...] = (
    "禾源燕麦打卡 1 群", "禾源燕麦打卡 2 群", "健身蛋白粉交流群", "宝妈营养交流群",
    "控糖饮食互助群", "禾源福利官方群", "禾源 VIP 会员群",
)
CARRIERS: tuple[tuple[str, str], ...] = (
    ("顺丰速运", "SF"), ("中通快递", "ZT"), ("圆通速递", "YT"), ("京东物流", "JD"),
    ("韵达快递", "YD"),
)
PAYMENT_FAILURES: tuple[str, ...] = (
    "银行卡余额不足", "支付超时", "支付密码错误次数过多", "银行系统繁忙", "超出单日支付限额",
)
CAMPAIGN_COUPONS: tuple[str, ...] = ("双11 满300减50", "618 满199减30", "年货节 8 折券",
                                     "女神节 满100减15", "新人专享 20 元券", "会员日 9 折券")

# Free-text feedback by topic: (positive, negative) phrases. The generator picks a topic,
# a sentiment and one phrase, sometimes with a product name.
FEEDBACK: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "taste": (
        ("{p}口感很好，不甜不腻，家里老人孩子都爱吃", "味道比超市买的香多了，会回购",
         "冲泡后很顺滑，没有颗粒感，早餐必备"),
        ("{p}味道有点怪，和上次买的不太一样", "太甜了，说好的低糖呢",
         "口感偏干，有点难以下咽"),
    ),
    "delivery": (
        ("物流很快，隔天就到了", "快递小哥很负责，送货上门", "包裹完好，发货速度快"),
        ("快递太慢了，等了一个星期", "物流信息好几天不更新，很着急",
         "说好的次日达，结果晚了三天"),
    ),
    "price": (
        ("活动价很划算，囤了几盒", "会员价实惠，性价比高", "双11 价格给力"),
        ("价格有点贵，活动一过就涨价", "刚买完就降价了，不保价吗", "比别家贵不少"),
    ),
    "service": (
        ("顾问很专业，推荐的搭配很适合我", "客服回复及时，问题很快解决了",
         "专属顾问每次都提醒我补货，很贴心"),
        ("客服半天不回消息", "问了三次都没人解决，体验很差", "机器人答非所问，找不到人工"),
    ),
    "packaging": (
        ("包装精致，送人很有面子", "独立小包装，上班携带方便", "礼盒很高级，朋友很喜欢"),
        ("外包装破损，里面有一袋漏了", "包装太简陋了，送人拿不出手", "密封条坏了，担心受潮"),
    ),
    "efficacy": (
        ("吃了一个月{p}，肠胃舒服多了", "配合健身效果明显，体脂降了",
         "早上吃饱腹感很强，控糖有帮助"),
        ("吃了两个月没感觉有什么效果", "喝完有点胀气", "宣传的效果有点夸大"),
    ),
}
FEEDBACK_TOPICS: tuple[str, ...] = tuple(FEEDBACK)

AFTER_SALES: dict[str, tuple[str, ...]] = {
    "return": ("买多了，想退一盒没拆封的", "收到的{p}临近保质期，申请退货",
               "拍错规格了，申请退货退款"),
    "exchange": ("想换成巧克力口味的", "收到的{p}包装压坏了，能换一个吗", "规格发错了，要求换货"),
    "complaint": (
        "快递一直没送到，客服也不回复，太失望了",
        "{p}里吃出了异物，要求给个说法",
        "活动价没生效，多扣了钱，找了两次都没人处理",
    ),
    "consult": ("{p}孕期可以吃吗", "{p}一天吃多少合适", "糖尿病人能吃{p}吗", "会员积分怎么兑换"),
}
AFTER_SALES_KINDS: tuple[str, ...] = ("return", "exchange", "complaint", "consult")

TAGS: tuple[str, ...] = ("素食", "健身人群", "宝妈", "控糖", "投诉中", "高价值", "送礼需求",
                         "价格敏感")

NICKNAME_SUFFIXES: tuple[str, ...] = ("", "🌸", "～", "同学", "妈妈", "_健身中", "爱吃燕麦")
