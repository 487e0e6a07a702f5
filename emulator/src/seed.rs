//! Fictional organisations and their users.
//!
//! The seeded tenants have fixed ids so documentation and tests can name them. Generated
//! tenants and every user are derived deterministically (a user is a pure function of its
//! tenant id and index), so large directories cost almost no memory.

use ring::digest;
use uuid::Uuid;

use super::directory::{NewTenant, Tenant};

/// Contoso, the first seeded tenant; tests and the README use it by id.
pub const CONTOSO: Uuid = Uuid::from_u128(0x3f2c8a71_5d94_4e0b_a6c3_1b7e9d2f4a58);
/// Tailspin Toys, the last seeded tenant; `consentry demo` signs its operators in with it.
pub const TAILSPIN: Uuid = Uuid::from_u128(0x5d8f1a6c_b3e7_4290_a4c1_8e2f7b6d9a03);

struct Seed {
    id: Uuid,
    name: &'static str,
    label: &'static str,
    custom: &'static [&'static str],
    country: &'static str,
    city: &'static str,
    users: u32,
}

const SEEDS: &[Seed] = &[
    Seed {
        id: CONTOSO,
        name: "Contoso Ltd",
        label: "contoso",
        custom: &["contoso.com"],
        country: "US",
        city: "Redmond",
        users: 36,
    },
    Seed {
        id: Uuid::from_u128(0xc6e1b9d4_8a2f_4b73_9e05_72d4a1f8c3b6),
        name: "Fabrikam, Inc.",
        label: "fabrikam",
        custom: &["fabrikam.com"],
        country: "US",
        city: "Seattle",
        users: 48,
    },
    Seed {
        id: Uuid::from_u128(0x7a95d2e8_1c4b_4f6a_b8d3_e09c5a7f2b14),
        name: "Northwind Traders",
        label: "northwindtraders",
        custom: &["northwindtraders.com"],
        country: "GB",
        city: "London",
        users: 24,
    },
    Seed {
        id: Uuid::from_u128(0xe4b07c3a_92d1_4a85_8f6e_3c1d5b9a7e20),
        name: "Woodgrove Bank",
        label: "woodgrovebank",
        custom: &["woodgrovebank.com", "woodgrove.ch"],
        country: "CH",
        city: "Zürich",
        // More than one default page (100) of users, so paging shows without $top.
        users: 130,
    },
    Seed {
        id: TAILSPIN,
        name: "Tailspin Toys",
        label: "tailspintoys",
        custom: &[],
        country: "AU",
        city: "Sydney",
        users: 12,
    },
];

/// The organisations every emulator starts with.
pub fn seeded_tenants() -> Vec<NewTenant> {
    SEEDS
        .iter()
        .map(|s| NewTenant {
            id: s.id,
            display_name: s.name.to_owned(),
            initial_domain: format!("{}.onmicrosoft.com", s.label),
            custom_domains: s.custom.iter().map(|d| (*d).to_owned()).collect(),
            country_letter_code: s.country.to_owned(),
            city: s.city.to_owned(),
            user_count: s.users,
        })
        .collect()
}

const ADJECTIVES: &[&str] = &[
    "Blue", "Bright", "Cedar", "Clear", "Coastal", "Copper", "Crimson", "Golden", "Granite",
    "Green", "Harbor", "Iron", "Lakeside", "Maple", "Meadow", "Northern", "Oak", "Pacific", "Pine",
    "Prairie", "Quiet", "Red", "River", "Silver", "Southern", "Spruce", "Stone", "Summit", "Sunny",
    "Swift", "Valley", "Western",
];
const NOUNS: &[&str] = &[
    "Anchor", "Arrow", "Beacon", "Bridge", "Canyon", "Compass", "Crest", "Falcon", "Field",
    "Forge", "Grove", "Hawk", "Horizon", "Island", "Lantern", "Ledger", "Mill", "Orchard", "Peak",
    "Pioneer", "Rock", "Sail", "Spring", "Star", "Tide", "Trail", "Vista", "Willow",
];
const KINDS: &[&str] = &[
    "Logistics",
    "Consulting",
    "Health",
    "Foods",
    "Energy",
    "Legal",
    "Software",
    "Retail",
    "Engineering",
    "Media",
    "Insurance",
    "Travel",
];
const CITIES: &[(&str, &str)] = &[
    ("US", "Chicago"),
    ("US", "Austin"),
    ("GB", "Manchester"),
    ("DE", "Berlin"),
    ("FR", "Lyon"),
    ("NL", "Utrecht"),
    ("CA", "Toronto"),
    ("AU", "Melbourne"),
    ("JP", "Osaka"),
    ("BR", "Curitiba"),
    ("IN", "Pune"),
    ("SE", "Malmö"),
];

/// A fictional organisation numbered `n`, for bulk creation; `n` makes its domain unique.
pub fn generated_tenant(n: u64, user_count: u32) -> NewTenant {
    let i = n as usize;
    let adjective = ADJECTIVES[i % ADJECTIVES.len()];
    let noun = NOUNS[(i / ADJECTIVES.len()) % NOUNS.len()];
    let kind = KINDS[(i / (ADJECTIVES.len() * NOUNS.len())) % KINDS.len()];
    let (country, city) = CITIES[i % CITIES.len()];
    let label = format!("{adjective}{noun}{kind}{n}").to_ascii_lowercase();
    NewTenant {
        id: Uuid::new_v4(),
        display_name: format!("{adjective} {noun} {kind}"),
        initial_domain: format!("{label}.onmicrosoft.com"),
        custom_domains: Vec::new(),
        country_letter_code: country.to_owned(),
        city: city.to_owned(),
        user_count,
    }
}

const FIRST: &[&str] = &[
    "Adele",
    "Alex",
    "Allan",
    "Amara",
    "Ben",
    "Bianca",
    "Carlos",
    "Chen",
    "Christie",
    "Dana",
    "Diego",
    "Elena",
    "Emily",
    "Enrico",
    "Farah",
    "Grady",
    "Hana",
    "Henrietta",
    "Ines",
    "Isaiah",
    "Jamal",
    "Joni",
    "Kenji",
    "Lee",
    "Lidia",
    "Lynne",
    "Malik",
    "Megan",
    "Miriam",
    "Nestor",
    "Nia",
    "Olga",
    "Omar",
    "Patti",
    "Pradeep",
    "Quinn",
    "Raul",
    "Rosa",
    "Sakura",
    "Sanjay",
    "Tomas",
    "Uma",
    "Viktor",
    "Wen",
    "Xavier",
    "Yara",
    "Yusuf",
    "Zoe",
    "Ingrid",
    "Kwame",
];
const LAST: &[&str] = &[
    "Vance",
    "Wilber",
    "Deyoung",
    "Okafor",
    "Larsen",
    "Moreau",
    "Mendez",
    "Wei",
    "Cline",
    "Fischer",
    "Alvarez",
    "Petrova",
    "Braun",
    "Rossi",
    "Haddad",
    "Archie",
    "Sato",
    "Mueller",
    "Silva",
    "Thomas",
    "Hassan",
    "Sherman",
    "Tanaka",
    "Gu",
    "Holloway",
    "Robbins",
    "Bello",
    "Bowen",
    "Cohen",
    "Sanchez",
    "Adeyemi",
    "Ivanova",
    "Farouk",
    "Fernandez",
    "Gupta",
    "Quigley",
    "Ortiz",
    "Diaz",
    "Nakamura",
    "Rao",
    "Novak",
    "Iyer",
    "Kowalski",
    "Zhang",
    "Dubois",
    "Costa",
    "Demir",
    "Nguyen",
    "Johansson",
    "Mensah",
];
const TITLES: &[&str] = &[
    "Retail Manager",
    "Marketing Assistant",
    "Developer",
    "Product Manager",
    "Accountant",
    "IT Admin",
    "Sales Representative",
    "HR Manager",
    "Designer",
    "Legal Counsel",
    "CFO",
    "Support Engineer",
];

/// One user of a tenant, as Graph's `GET /users` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub display_name: String,
    pub given_name: String,
    pub surname: String,
    pub user_principal_name: String,
    pub mail: String,
    pub job_title: String,
    pub office_location: String,
    pub mobile_phone: Option<String>,
    pub business_phones: Vec<String>,
    pub preferred_language: &'static str,
}

/// User number `index` (from 0) of `tenant`; the same arguments always give the same user.
pub fn user(tenant: &Tenant, index: u32) -> User {
    let mut input = [0u8; 20];
    input[..16].copy_from_slice(tenant.id.as_bytes());
    input[16..].copy_from_slice(&index.to_be_bytes());
    let hash = digest::digest(&digest::SHA256, &input);
    let mut id_bytes = [0u8; 16];
    id_bytes.copy_from_slice(&hash.as_ref()[..16]);
    let id = uuid::Builder::from_random_bytes(id_bytes).into_uuid();

    // Every (first, last) pair appears once per block of FIRST x LAST users; the tenant id
    // shifts the start so tenants do not all begin with the same person.
    let block = (FIRST.len() * LAST.len()) as u64;
    let shift = u64::from(tenant.id.as_bytes()[0]) * 7 + u64::from(tenant.id.as_bytes()[1]);
    let k = (u64::from(index) + shift) % block;
    let (a, b) = (k % FIRST.len() as u64, k / FIRST.len() as u64);
    let given = FIRST[a as usize];
    // For a fixed first name, b -> (b + 13a) mod |LAST| is a bijection: pairs stay unique
    // while neighbours get different surnames.
    let surname = LAST[((b + 13 * a) % LAST.len() as u64) as usize];
    let suffix = match u64::from(index) / block {
        0 => String::new(),
        n => n.to_string(),
    };
    let local = format!("{given}.{surname}{suffix}").to_ascii_lowercase();
    let h = hash.as_ref();
    User {
        id,
        display_name: format!("{given} {surname}"),
        given_name: given.to_owned(),
        surname: surname.to_owned(),
        user_principal_name: format!("{local}@{}", tenant.initial_domain),
        mail: format!("{local}@{}", tenant.default_domain()),
        job_title: TITLES[usize::from(h[16]) % TITLES.len()].to_owned(),
        office_location: format!("{}/{}", 10 + h[17] % 30, 1000 + u16::from(h[18]) * 4),
        mobile_phone: (h[19] % 3 == 0).then(|| format!("+1 425 555 {:04}", u16::from(h[20]) * 39)),
        business_phones: vec![format!("+1 425 555 {:04}", u16::from(h[21]) * 39)],
        preferred_language: "en-US",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{AppRegistration, Directory};
    use std::collections::HashSet;

    fn tenant(users: u32) -> Tenant {
        let mut dir = Directory::new(AppRegistration {
            client_id: Uuid::new_v4(),
            display_name: "a".into(),
            secrets: vec![],
            redirect_uris: vec![],
            required_roles: vec![],
            app_roles: vec![],
            certificates: vec![],
            federated: vec![],
        });
        dir.insert(generated_tenant(7, users), time::OffsetDateTime::now_utc())
            .unwrap()
            .clone()
    }

    #[test]
    fn users_are_deterministic_and_unique_beyond_one_block() {
        let t = tenant(6000);
        assert_eq!(user(&t, 5), user(&t, 5));
        let upns: HashSet<String> = (0..6000).map(|i| user(&t, i).user_principal_name).collect();
        let ids: HashSet<Uuid> = (0..6000).map(|i| user(&t, i).id).collect();
        assert_eq!(upns.len(), 6000);
        assert_eq!(ids.len(), 6000);
    }

    #[test]
    fn seeded_tenants_have_distinct_ids_and_domains() {
        let seeds = seeded_tenants();
        assert!(seeds.len() >= 3);
        let ids: HashSet<Uuid> = seeds.iter().map(|s| s.id).collect();
        assert_eq!(ids.len(), seeds.len());
        assert!(
            seeds
                .iter()
                .all(|s| s.initial_domain.ends_with(".onmicrosoft.com"))
        );
        assert!(seeds.iter().all(|s| s.user_count >= 12));
    }

    #[test]
    fn generated_tenants_get_unique_domains() {
        let domains: HashSet<String> = (0..20_000)
            .map(|n| generated_tenant(n, 1).initial_domain)
            .collect();
        assert_eq!(domains.len(), 20_000);
    }
}
